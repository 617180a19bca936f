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
    def __init__(
        self, stdin: str, stdout: str, stderr: str, terminal: bool, cid: str = "", ns: str = ""
    ) -> None:
        self.paths = (stdin, stdout, stderr)
        self.terminal = terminal
        self.fds: list[int] = []  # everything we opened; closed by close()
        self.stdin_keep = -1
        self.logger_pid = 0
        null = -1
        try:
            in_fd = self._open_in(stdin) if stdin else -1
            if stdout.startswith("binary://"):
                out_fd, err_fd = self._logger(stdout, cid, ns)
            else:
                out_fd = self._open_out(stdout) if stdout else -1
                if stderr and stderr == stdout and stdout.startswith("file://"):
                    err_fd = out_fd  # one file, both streams
                else:
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

    def _open_out(self, uri: str) -> int:
        if uri.startswith("file://"):
            path = uri[len("file://") :]
            if not path.startswith("/"):
                raise TTRPCError(codes.INVALID_ARGUMENT, f"{uri}: the log file must be absolute")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        else:
            fd = os.open(_fifo_path(uri), os.O_RDWR | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def _logger(self, uri: str, cid: str, ns: str) -> tuple[int, int]:
        """binary:///path?k=v: the logger reads the container's stdout on fd 3 and stderr on
        fd 4, and says it is ready by writing to (or closing) fd 5; its environment is only
        CONTAINER_ID and CONTAINER_NAMESPACE (containerd's contract)."""
        import select
        from urllib.parse import parse_qsl, urlsplit

        u = urlsplit(uri)
        args = [u.path]
        for k, v in parse_qsl(u.query, keep_blank_values=True):
            args += [k, v] if v else [k]
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        self.fds += [out_w, err_w]
        try:
            self.logger_pid = os.posix_spawn(
                u.path, args, {"CONTAINER_ID": cid, "CONTAINER_NAMESPACE": ns},
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_r, 3),
                    (os.POSIX_SPAWN_DUP2, err_r, 4),
                    (os.POSIX_SPAWN_DUP2, ready_w, 5),
                ],
            )
        except OSError as e:
            raise TTRPCError(codes.UNKNOWN, f"failed to start logger {u.path}: {e}") from None
        finally:
            for fd in (out_r, err_r, ready_w):
                os.close(fd)
        try:
            if select.select([ready_r], [], [], 30.0)[0]:
                os.read(ready_r, 1)
        finally:
            os.close(ready_r)
        return out_w, err_w

    def close_stdin(self) -> None:
        if self.stdin_keep >= 0:
            os.close(self.stdin_keep)
            self.stdin_keep = -1

    def close(self) -> None:
        self.close_stdin()
        for fd in set(self.fds):
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
