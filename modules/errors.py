"""Every error that means bad input rather than a bug.

The scripts' guard catches ``FommError`` and prints its message as one line (exit code 2);
anything else is a bug and keeps its traceback. Library code raises these and never imports
the command line.
"""


class FommError(Exception):
    """Bad input: the message says what is wrong, which file, and what to do."""


class UsageError(FommError):
    """Flags or paths that do not work together."""


class ConfigError(FommError):
    """A config file that is missing, unreadable or does not describe an FOMM model."""


class CheckpointError(FommError):
    """A checkpoint that cannot be read, or is not an FOMM checkpoint."""


class WeightError(FommError):
    """A checkpoint whose tensors do not fit the config's model."""


class InputError(FommError):
    """An image or video that cannot be read, or an output that cannot be written."""


class ExportError(FommError):
    """A model that cannot be exported as asked."""
