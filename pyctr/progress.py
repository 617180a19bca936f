"""Progress of pull and push: one bar per blob on a terminal, plain lines otherwise.

On a terminal (stderr a tty) rich draws a bar per layer (bytes done / total, speed). rich is
imported only then: it costs tens of milliseconds, and a pull in a script or CI (stderr a
pipe or a file) should cost what it did, and print the lines it did
(`sha256:<12 hex>: done (N bytes)`), which logs and tests read.

The registry client only sees the small interface below (Progress.task, Task.advance, .seek,
.finish), so it knows nothing of rich; Progress() is the silent one a library caller gets.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType


class Task:
    """One blob's transfer. The plain and silent kind only report the end."""

    def __init__(self, digest: str, total: int, say: Callable[[str], None] | None) -> None:
        self.digest, self.total, self.say = digest, total, say

    def advance(self, n: int) -> None:
        """n more bytes went (or came)."""

    def seek(self, done: int) -> None:
        """The transfer starts again from done bytes (a retry, or a resumed upload)."""

    def finish(self, what: str) -> None:
        """The blob is through: what is `done`, `pushed`, `mounted from <repo>`..."""
        if self.say:
            self.say(f"{self.digest[:19]}: {what} ({self.total} bytes)")


class Progress:
    """Silent, or plain lines through say; a context manager like the rich kind."""

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.say = say

    def task(self, digest: str, total: int, verb: str) -> Task:
        return Task(digest, total, self.say)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _RichTask(Task):
    def __init__(self, bars: object, tid: object, digest: str, total: int) -> None:
        super().__init__(digest, total, None)
        self.bars, self.tid = bars, tid

    def advance(self, n: int) -> None:
        self.bars.advance(self.tid, n)  # type: ignore[attr-defined]

    def seek(self, done: int) -> None:
        self.bars.reset(self.tid, completed=done)  # type: ignore[attr-defined]

    def finish(self, what: str) -> None:
        self.bars.update(self.tid, completed=self.total,  # type: ignore[attr-defined]
                         description=_label(self.digest, what))


class RichProgress(Progress):
    """rich.progress bars on stderr, drawn from the first task until the context exits."""

    def __init__(self) -> None:
        super().__init__(None)
        from rich import progress as rp
        from rich.console import Console

        self.bars = rp.Progress(rp.TextColumn("{task.description}"), rp.BarColumn(),
                                rp.TaskProgressColumn(), rp.DownloadColumn(),
                                rp.TransferSpeedColumn(),
                                console=Console(stderr=True))
        self.lock = threading.Lock()  # (pull's layers start from several threads)
        self.started = False

    def task(self, digest: str, total: int, verb: str) -> Task:
        with self.lock:
            if not self.started:  # (drawn from the first bar on: an empty display would
                self.bars.start()  # print blank lines while the manifests come)
                self.started = True
        tid = self.bars.add_task(_label(digest, verb), total=total)
        return _RichTask(self.bars, tid, digest, total)

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.started:
            self.bars.stop()  # (the last frame stays; the cursor is back before any error)


def _label(digest: str, what: str) -> str:
    return f"{digest[7:19]} {what:<7}"  # (short digest as docker shows it; bars aligned)


def for_stderr(say: Callable[[str], None]) -> Progress:
    """Bars when stderr is a terminal (and rich is there), else say's plain lines."""
    if sys.stderr.isatty():
        try:
            return RichProgress()
        except ImportError:
            pass
    return Progress(say)


def counted(chunks: Iterable[bytes], task: Task) -> Iterator[bytes]:
    """The chunks, each counted on task as it passes (store writes and uploads take
    iterators: wrapping one is all the counting needs)."""
    for c in chunks:
        task.advance(len(c))
        yield c
