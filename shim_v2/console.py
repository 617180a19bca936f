"""A process's terminal: the pty master pyrunc hands over, copied to and from the client's
FIFOs on the shim's loop, resized by ResizePty."""

from __future__ import annotations

import errno
import os

from shim_v2.ttrpc import Loop


class Console:
    def __init__(self, loop: Loop, master: int, stdin_fd: int, out_fd: int) -> None:
        self.loop = loop
        self.master = master
        self.stdin_fd = stdin_fd  # the client's stdin FIFO (ours to read), or -1
        self.out_fd = out_fd  # the client's stdout FIFO
        os.set_blocking(master, False)
        loop.add_reader(master, self._output)
        if stdin_fd >= 0:
            os.set_blocking(stdin_fd, False)
            loop.add_reader(stdin_fd, self._input)

    def _output(self) -> None:
        if self.master >= 0:
            self._pump_out()

    def _pump_out(self) -> bool:
        """Copy what the pty holds; False once it is done for good (EIO: no slave left)."""
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except BlockingIOError:
                return True
            except OSError as e:
                if e.errno == errno.EIO:
                    self.loop.remove_reader(self.master)
                    return False
                raise
            if not data:
                self.loop.remove_reader(self.master)
                return False
            _write_all(self.out_fd, data)

    def _input(self) -> None:
        if self.stdin_fd < 0 or self.master < 0:
            return
        try:
            data = os.read(self.stdin_fd, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self.loop.remove_reader(self.stdin_fd)
            self.stdin_fd = -1
            return
        _write_all(self.master, data)

    def resize(self, width: int, height: int) -> None:
        from pyrunc.linux import sys as LS

        LS.set_winsize(self.master, height, width)

    def drain(self) -> None:
        """Everything the process wrote, into the FIFO, before its exit is reported."""
        if self.master >= 0:
            self._pump_out()

    def close(self) -> None:
        if self.stdin_fd >= 0:
            self.loop.remove_reader(self.stdin_fd)
            self.stdin_fd = -1
        if self.master >= 0:
            self.loop.remove_reader(self.master)
            os.close(self.master)
            self.master = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            import select

            select.select([], [fd], [], 1.0)
        except OSError:
            return  # the reader is gone: drop it, as a terminal would
