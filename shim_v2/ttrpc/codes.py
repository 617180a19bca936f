"""gRPC status codes as TTRPC carries them in Response.status, and the error that carries one.

containerd maps the code to its own error classes (errdefs.FromGRPC): NotFound, AlreadyExists,
FailedPrecondition and Unimplemented change what it does next, so handlers raise the precise
code rather than a generic failure.
"""

from __future__ import annotations

OK = 0
CANCELED = 1
UNKNOWN = 2
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
OUT_OF_RANGE = 11
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
DATA_LOSS = 15
UNAUTHENTICATED = 16

NAMES = {
    v: k
    for k, v in globals().items()
    if k.isupper() and isinstance(v, int)
}


class TTRPCError(Exception):
    """A call's failure as a status code and message: raised by handlers (the server sends
    it as Response.status) and by the client (a status received, or the connection lost)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{NAMES.get(self.code, self.code)}: {self.message}"
