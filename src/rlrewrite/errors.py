"""The one base of every expected failure (a bad param, bad data, a missing engine or model, a
corrupt file): a stage that raises one ends with a single line naming the stage and the cause,
no traceback (rlrewrite/stage.py). Anything else is a bug and keeps its traceback."""


class PipelineError(Exception):
    pass


class MissingInputError(PipelineError, FileNotFoundError):
    """A file a stage declares as its input (dvc.yaml `deps`) does not exist."""
