"""pyctr's one error type: what the user did or gave that cannot work, as one line."""

from __future__ import annotations


class PyctrError(Exception):
    """The message is the whole report (the CLI prints it as `pyctr: MESSAGE`, exit 1)."""
