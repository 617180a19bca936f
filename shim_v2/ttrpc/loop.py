"""One single-threaded event loop on `selectors`: fds, timers and futures, nothing more.

Why not asyncio: importing it costs ~35 ms and ~11 MB of RSS here (it pulls in ssl and
concurrent.futures), and a shim that is not grouped pays its start on every container's
critical path. Why single-threaded: the shim forks container processes from this process, and
forking with other threads alive can leave the child holding locks nobody will release (and
makes pyrunc's clone3 cgroup placement unsafe). Handlers that would block instead return a
Future that something on the loop (a timer, an fd, a child's exit) completes later.
"""

from __future__ import annotations

import heapq
import selectors
import time
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Future:
    """A result that arrives later, on the loop's thread."""

    __slots__ = ("_done", "_result", "_exc", "_callbacks")

    def __init__(self) -> None:
        self._done = False
        self._result: Any = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            raise RuntimeError("future is not done")
        if self._exc is not None:
            raise self._exc
        return self._result

    def exception(self) -> BaseException | None:
        return self._exc

    def set_result(self, value: Any) -> None:
        if not self._done:
            self._done, self._result = True, value
            self._fire()

    def set_exception(self, exc: BaseException) -> None:
        if not self._done:
            self._done, self._exc = True, exc
            self._fire()

    def add_done_callback(self, cb: Callable[[Future], None]) -> None:
        if self._done:
            cb(self)
        else:
            self._callbacks.append(cb)

    def _fire(self) -> None:
        cbs, self._callbacks = self._callbacks, []
        for cb in cbs:
            cb(self)


class Timer:
    __slots__ = ("when", "cb", "cancelled")

    def __init__(self, when: float, cb: Callable[[], None]) -> None:
        self.when = when
        self.cb = cb
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Timer) -> bool:
        return self.when < other.when


class Loop:
    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self._timers: list[Timer] = []
        self._soon: list[Callable[[], None]] = []
        self._stopping = False
        self.errors: list[Exception] = []

    # -- fds ------------------------------------------------------------------------------

    def _modify(self, fd: int, event: int, cb: Callable[[], None] | None) -> None:
        try:
            key = self.sel.get_key(fd)
            cbs = dict(key.data)
        except KeyError:
            key, cbs = None, {}
        if cb is None:
            cbs.pop(event, None)
        else:
            cbs[event] = cb
        mask = 0
        for ev in cbs:
            mask |= ev
        if key is None:
            if mask:
                self.sel.register(fd, mask, cbs)
        elif mask:
            self.sel.modify(fd, mask, cbs)
        else:
            self.sel.unregister(fd)

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self._modify(fd, selectors.EVENT_READ, cb)

    def remove_reader(self, fd: int) -> None:
        self._modify(fd, selectors.EVENT_READ, None)

    def add_writer(self, fd: int, cb: Callable[[], None]) -> None:
        self._modify(fd, selectors.EVENT_WRITE, cb)

    def remove_writer(self, fd: int) -> None:
        self._modify(fd, selectors.EVENT_WRITE, None)

    # -- time -----------------------------------------------------------------------------

    def call_later(self, delay: float, cb: Callable[[], None]) -> Timer:
        t = Timer(time.monotonic() + delay, cb)
        heapq.heappush(self._timers, t)
        return t

    def call_soon(self, cb: Callable[[], None]) -> None:
        self._soon.append(cb)

    # -- running --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True

    def run_once(self, max_wait: float | None = None) -> None:
        timeout = max_wait
        if self._soon:
            timeout = 0
        elif self._timers:
            while self._timers and self._timers[0].cancelled:
                heapq.heappop(self._timers)
            if self._timers:
                due = max(0.0, self._timers[0].when - time.monotonic())
                timeout = due if timeout is None else min(timeout, due)
        events = self.sel.select(timeout) if self.sel.get_map() else _sleep(timeout)
        for key, mask in events:
            for ev in (selectors.EVENT_READ, selectors.EVENT_WRITE):
                if not mask & ev:
                    continue
                # an earlier callback of this batch may have unregistered (and closed) it
                try:
                    cb = self.sel.get_key(key.fd).data.get(ev)
                except KeyError:
                    cb = None
                if cb is not None:
                    self._call(cb)
        now = time.monotonic()
        while self._timers and self._timers[0].when <= now:
            t = heapq.heappop(self._timers)
            if not t.cancelled:
                self._call(t.cb)
        soon, self._soon = self._soon, []
        for cb in soon:
            self._call(cb)

    def _call(self, cb: Callable[[], None]) -> None:
        """One callback's failure is reported and contained: in a shim, the loop serves every
        container of the group, and one bad fd must not take them all down. The failures
        are kept in `errors` (the last 100) for tests and diagnostics."""
        try:
            cb()
        except Exception as e:  # noqa: BLE001
            import sys
            import traceback

            self.errors.append(e)
            del self.errors[:-100]
            print("event loop: a callback failed:", file=sys.stderr)
            traceback.print_exc()

    def run_forever(self) -> None:
        self._stopping = False
        while not self._stopping:
            self.run_once()

    def run_until(self, fut: Future, timeout: float | None = None) -> Any:
        """Run until fut is done (or timeout seconds pass: TimeoutError); its result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not fut.done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError("timed out waiting for the loop")
            self.run_once(left)
        return fut.result()

    def close(self) -> None:
        self.sel.close()


def _sleep(timeout: float | None) -> list:
    if timeout is None:
        raise RuntimeError("the loop has nothing to wait for")
    time.sleep(timeout)
    return []
