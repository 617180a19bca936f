"""Single-write and small reads of kernel files (cgroupfs, procfs): one open, one write.

Kernel interfaces take a value per write(2) and report errors from it, so buffered text I/O
(which may split or defer writes) is the wrong tool here.
"""

from __future__ import annotations

import os


def write_file(path: str, data: str | bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    """The stripped contents, or "" if the file cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode().strip()
    except OSError:
        return ""


def read_int(path: str) -> int:
    try:
        return int(read_text(path))
    except ValueError:
        return 0
