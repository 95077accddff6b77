"""The one error type a stage raises for bad input that the user must fix.

The CLI prints its message (never a traceback) and exits with status 2; anything
else is a bug and keeps its traceback.
"""


class StageError(RuntimeError):
    """Bad input, config or environment, described so the user can act on it."""
