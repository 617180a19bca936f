"""Errors that reach the user as one line on stderr (and one JSON log line), never a traceback."""


class RuntimeErr(Exception):
    """A failure the user caused or can act on; the message is printed as-is."""

    exit_code = 1


class ConfigError(RuntimeErr):
    """config.json (or another input document) is invalid; the message names the JSON path."""


class UsageError(RuntimeErr):
    """Bad command-line usage (wrong argument count, unknown flag value)."""


class NotFound(RuntimeErr):
    """The named container does not exist."""


def oserror_text(e: OSError) -> str:
    """strerror plus the file it concerns: "No such file or directory: /x"."""
    msg = e.strerror or str(e)
    if e.filename is not None and str(e.filename) not in msg:
        return f"{msg}: {e.filename}"
    return msg
