# One-command entry points. `make repro` and `make test` set up .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# DVC stages call `python`: make it the project environment's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-quick

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/pytest -q

test-quick: setup
	$(BIN)/pytest -q -m "not slow"
