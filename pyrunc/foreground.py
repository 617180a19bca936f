"""`run` and `exec` in the foreground: forward signals, pump a pty, return the exit status.

The runtime is a child subreaper, so the container's init (forked twice for the PID namespace)
is re-parented to us and waitpid gives its real exit status.
"""

from __future__ import annotations

import os

_NO_FORWARD = {9, 17, 19, 23, 28}  # KILL, CHLD, STOP, URG, WINCH


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Forwarder:
    """Catches the signals to forward from before the container exists.

    Installed before create/exec starts the process, as runc does: a signal that arrives
    between the process starting and `wait` being reached is queued and delivered, not lost
    (the default action would kill the runtime and orphan the container).
    """

    def __init__(self) -> None:
        import _signal as signal  # the signal module pulls in enum (~3 ms)

        self.signal = signal
        self._owner = os.getpid()
        self.pid = 0
        self.pending: list[int] = []
        for sig in range(1, 32):
            if sig not in _NO_FORWARD:
                try:
                    signal.signal(sig, self._on_signal)
                except (OSError, ValueError):
                    pass

    def _on_signal(self, sig: int, _frame: object) -> None:
        if os.getpid() != self._owner:
            return  # a forked child before its exec: the signal is not ours to forward
        if self.pid <= 0:
            self.pending.append(sig)
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, pid: int, master: int = -1) -> int:
        import gc

        gc.enable()  # the launcher turned it off for the short start; this may run for days
        self.pid = pid
        while self.pending:
            self._on_signal(self.pending.pop(0), None)
        if master >= 0:
            _pump(master, self.signal)
        while True:
            try:
                p, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if p == pid:
                return exit_status(status)


def _pump(master: int, signal: object) -> None:
    import select

    from pyrunc.linux import sys as S

    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
        try:
            rows, cols = S.get_winsize(0)
            S.set_winsize(master, rows, cols)
        except OSError:
            pass

        def winch(_s: int, _f: object) -> None:
            try:
                r, c = S.get_winsize(0)
                S.set_winsize(master, r, c)
            except OSError:
                pass

        signal.signal(28, winch)  # type: ignore[attr-defined]
    try:
        fds = [master, 0]
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                _write_all(1, data)
            if 0 in ready:
                try:
                    data = os.read(0, 65536)
                except OSError:
                    data = b""
                if not data:
                    fds = [master]
                else:
                    _write_all(master, data)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)


def drain(master: int, timeout: float = 2.0) -> None:
    """Copy what a pty holds to stdout until its last slave is gone (EIO), then close it.

    The kernel hands a slave's writes to the master through a work queue, so a read right
    after the writer exited can find nothing yet: wait for EIO, bounded by `timeout` in case
    a process we do not know of still holds the slave."""
    import select
    import time

    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([master], [], [], left)[0]:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: no slave left and nothing buffered
                break
            if not data:
                break
            _write_all(1, data)
    finally:
        os.close(master)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            continue
        except OSError:
            return
        data = data[n:]
