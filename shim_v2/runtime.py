"""The runtime behind the shim: pyrunc's library, in this process.

No runtime process per call: create forks the container's init straight from the shim
(which therefore is its parent and reaps it), start/kill/delete/pause are function calls.
The shim is single-threaded (one loop, no thread pool) because create forks: see
shim_v2/ttrpc/loop.py, and pyrunc's clone3 cgroup placement, which needs a single thread.
"""

from __future__ import annotations

import os

from pyrunc import container
from pyrunc import state as S
from pyrunc.errors import NotFound, RuntimeErr


class InProcess:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, 0o711, exist_ok=True)

    def create(
        self, cid: str, bundle: str, stdio: tuple[int, int, int], *, console_socket: str = "",
        no_pivot: bool = False, no_new_keyring: bool = False,
    ) -> tuple[int, int]:
        """(the init's pid, the pty master if config.json asks for a terminal, else -1)"""
        cwd = os.getcwd()
        try:
            c = container.create(
                self.root, cid, bundle, console_socket=console_socket, no_pivot=no_pivot,
                no_new_keyring=no_new_keyring, stdio=stdio, detach=bool(console_socket),
            )
        finally:
            os.chdir(cwd)  # (create works from the bundle)
        return c.st["pid"], c.console_master

    def start(self, cid: str) -> None:
        container.start(self.root, cid)

    def exec(self, cid: str, proc: dict, stdio: tuple[int, int, int]) -> tuple[int, int]:
        """(its pid, the pty master when proc has a terminal, else -1)"""
        from pyrunc import execproc

        return execproc.start(self.root, cid, proc, stdio=stdio)

    def kill(self, cid: str, sig: int, all_: bool = False) -> None:
        container.kill(self.root, cid, sig, all_)

    def delete(self, cid: str, force: bool = False) -> None:
        try:
            container.delete(self.root, cid, force=force)
        except NotFound:
            pass

    def pause(self, cid: str, frozen: bool) -> None:
        container.pause(self.root, cid, frozen)

    def state(self, cid: str) -> tuple[str, dict]:
        st = S.load(self.root, cid)
        return S.status(self.root, st), st

    def stats(self, cid: str) -> dict:
        """runc's `events --stats` figures (pyrunc.events), v1 or v2 alike."""
        from pyrunc import events

        st = S.load(self.root, cid)
        return events.stats(st.get("cgroup") or {})

    def pids(self, cid: str) -> list[int]:
        from pyrunc.linux import cgroups

        st = S.load(self.root, cid)
        return cgroups.pids(st.get("cgroup") or {})


Error = RuntimeErr
