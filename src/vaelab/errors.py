"""The one error type users see: a single sentence naming what is wrong and how to fix it."""

from __future__ import annotations


class VaelabError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits with status 2."""


class ConfigError(VaelabError):
    """A setting, flag or config-file key is wrong."""


class DataError(VaelabError):
    """Input data cannot be read or does not fit the model."""


class RunDirError(VaelabError):
    """A run directory is missing, incomplete or cannot be written."""


class ModelFileError(VaelabError):
    """A model file is not safetensors or does not match its model.json."""


class TrainingError(VaelabError):
    """Training cannot go on (for example a non-finite loss)."""


class RunFailed(VaelabError):
    """Training finished but a later step failed; run.json names it and how to redo it."""
