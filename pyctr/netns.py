"""A container's network namespace, made and pinned by pyctr before the runtime starts it.

CNI plugins configure a namespace given by path, and the runtime joins it by path
(linux.namespaces[network].path), so the namespace must exist without any process in it: a
child unshares a new one and bind-mounts its /proc/self/ns/net onto a file of ours (the pin),
then exits; the pin keeps it alive until remove() unmounts it. Like `ip netns add`, with the
pins under pyctr's state directory rather than /run/netns.

Made with two syscalls through pyrunc's syscall boundary (linux/sys.py), not pyroute2: that
package costs ~250 ms to import, and nothing here needs netlink (the CNI plugins do that).
"""

from __future__ import annotations

import os

from pyctr.errors import PyctrError
from pyrunc.linux import sys as S


def create(pin: str) -> None:
    """A new network namespace pinned at pin (a new file), its lo up (what the CNI loopback
    plugin would do, as the runtime does in a namespace it makes: one ioctl, not two more
    plugin runs)."""
    os.makedirs(os.path.dirname(pin), 0o700, exist_ok=True)
    fd = os.open(pin, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing but the two syscalls, then _exit
        os.close(r)
        err = 0
        try:
            S.unshare(S.CLONE_NEWNET)
            S.loopback_up()
            S.mount("/proc/self/ns/net", pin, None, S.MS_BIND)
        except OSError as e:
            err = e.errno or 1
        os.write(w, bytes([min(err, 255)]))
        os._exit(0)
    os.close(w)
    try:
        got = os.read(r, 1)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if got != b"\x00":
        try:
            os.unlink(pin)
        except FileNotFoundError:
            pass
        code = got[0] if got else 0
        raise PyctrError(f"network namespace {pin}: {os.strerror(code) if code else 'failed'}")


def remove(pin: str) -> None:
    """Unpin (the namespace goes when nothing else holds it) and remove the file."""
    try:
        S.umount2(pin, S.MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(pin)
    except FileNotFoundError:
        pass


def pinned(pin: str) -> bool:
    """Whether pin holds a namespace (a bind of nsfs), not just the empty file."""
    try:
        return os.stat(pin).st_dev != os.stat(os.path.dirname(pin)).st_dev
    except FileNotFoundError:
        return False
