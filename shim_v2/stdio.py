"""The container's stdio from what containerd's client made: FIFO paths (or none).

The process gets the FIFOs themselves as its fds (no copy loop in the shim, no data through
Python). Output FIFOs are opened read-write, so that opening never blocks and a departed
reader (`ctr run -d`) never turns into EPIPE for the container. For stdin the shim keeps a
write handle of its own: the process sees EOF only once CloseIO drops it and the client's
writer is gone too, not when a client merely disconnects.
"""

from __future__ import annotations

import os

from shim_v2.ttrpc import TTRPCError, codes


class Stdio:
    def __init__(self, stdin: str, stdout: str, stderr: str, terminal: bool) -> None:
        self.paths = (stdin, stdout, stderr)
        self.terminal = terminal
        self.fds: list[int] = []  # everything we opened; closed by close()
        self.stdin_keep = -1
        null = -1
        try:
            in_fd = self._open_in(stdin) if stdin else -1
            out_fd = self._open_out(stdout) if stdout else -1
            err_fd = self._open_out(stderr) if stderr else (out_fd if terminal else -1)
            if -1 in (in_fd, out_fd, err_fd):
                null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                self.fds.append(null)
            self.proc = tuple(fd if fd >= 0 else null for fd in (in_fd, out_fd, err_fd))
        except BaseException:
            self.close()
            raise

    def _open_in(self, path: str) -> int:
        path = _fifo_path(path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.fds.append(fd)
        os.set_blocking(fd, True)
        self.stdin_keep = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        return fd

    def _open_out(self, path: str) -> int:
        fd = os.open(_fifo_path(path), os.O_RDWR | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def close_stdin(self) -> None:
        if self.stdin_keep >= 0:
            os.close(self.stdin_keep)
            self.stdin_keep = -1

    def close(self) -> None:
        self.close_stdin()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []


def _fifo_path(uri: str) -> str:
    if uri.startswith("fifo://"):
        return uri[len("fifo://") :]
    if "://" in uri:
        raise TTRPCError(codes.UNIMPLEMENTED, f"unknown STDIO scheme {uri.split('://')[0]}")
    return uri
