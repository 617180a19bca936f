"""Task events to containerd: TTRPC `containerd.services.events.ttrpc.v1.Events/Forward` on
TTRPC_ADDRESS, queued in order and retried, never blocking a Task call.

containerd requires the envelope's timestamp ("timestamp must be set on forwarded event");
the event is an Any whose type URL is the bare proto name (containerd.events.TaskExit).
"""

from __future__ import annotations

import sys
import time
from collections import deque

from google.protobuf.message import Message

from shim_v2.messages import Any_ as Any
from shim_v2.messages import Timestamp, ev, timestamp
from shim_v2.ttrpc import Client, Future, Loop, TTRPCError

SERVICE = "containerd.services.events.ttrpc.v1.Events"
RETRIES = 5


def now() -> Timestamp:  # type: ignore[valid-type]
    return timestamp(time.time_ns())


def pack(msg: Message) -> Any:
    return Any(type_url=msg.DESCRIPTOR.full_name, value=msg.SerializeToString())


class Publisher:
    """One event in flight at a time, so containerd sees them in the order they happened
    (create -> start -> exit -> delete)."""

    def __init__(self, loop: Loop, address: str, namespace: str) -> None:
        self.loop = loop
        self.address = address
        self.namespace = namespace
        self.queue: deque[tuple[bytes, int]] = deque()
        self.client: Client | None = None
        self.busy = False

    def publish(self, topic: str, event: Message) -> None:
        if not self.address:
            return
        env = ev.Envelope(
            timestamp=now(), namespace=self.namespace, topic=topic, event=pack(event)
        )
        self.queue.append((ev.ForwardRequest(envelope=env).SerializeToString(), 0))
        self._next()

    def _next(self) -> None:
        if self.busy or not self.queue:
            return
        payload, tries = self.queue[0]
        try:
            if self.client is None or self.client.closed:
                self.client = Client.connect(self.loop, self.address)
        except OSError as e:
            self._failed(f"connect {self.address}: {e}")
            return
        self.busy = True
        fut = self.client.call(
            SERVICE, "Forward", payload, timeout=5.0,
            metadata={"containerd-namespace-ttrpc": self.namespace},
        )
        fut.add_done_callback(self._done)

    def _done(self, fut: Future) -> None:
        self.busy = False
        exc = fut.exception()
        if exc is None:
            self.queue.popleft()
            self._next()
        else:
            self._failed(str(exc) if isinstance(exc, TTRPCError) else repr(exc))

    def _failed(self, why: str) -> None:
        payload, tries = self.queue.popleft()
        if tries + 1 >= RETRIES:
            print(f"shim: dropping an event after {RETRIES} tries: {why}", file=sys.stderr)
            self._next()
            return
        self.queue.appendleft((payload, tries + 1))
        self.loop.call_later(0.1 * 2**tries, self._next)

    def pending(self) -> int:
        return len(self.queue)
