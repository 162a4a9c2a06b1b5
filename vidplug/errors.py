"""User-facing errors.

A :class:`VidplugError` carries a one-line message that names the problem and the fix. The CLI prints it without a
traceback and exits with code 2; library callers can catch it like any exception.
"""


class VidplugError(Exception):
    """A problem with the user's input or environment, explained in one line (what is wrong, what to do)."""

    exit_code = 2


class MissingWeightsError(VidplugError):
    """Model weights are not present locally and cannot be downloaded (offline)."""
