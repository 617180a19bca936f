"""The images the CRI tests need, made offline from busybox-static (pyctr's busybox:local
layer): `busybox` and the pod sandbox ("pause") image under the name the CRI config's
sandbox_image gives, so containerd's CRI plugin never pulls anything. The pause image differs
only in its command: a process that sleeps until it is killed, all a pause container does.
"""

from __future__ import annotations

import subprocess

from pyctr.busybox import oci_archive

BUSYBOX = "docker.io/library/busybox:cri"
PAUSE = "registry.k8s.io/pause:3.6"  # what the test config's sandbox_image names


def build(path: str) -> str:
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                          check=True).stdout.strip()
    return oci_archive(path, [(BUSYBOX, ["sh"]), (PAUSE, ["sleep", "2147483647"])], arch)
