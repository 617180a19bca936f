"""cffi modules are generated at install time, never at run time: the syscall glue (API mode,
compiled) and the libseccomp binding (out-of-line ABI mode: a generated .py, no compiler).

containerd-shim-pyrunc-v2 is installed as a small compiled launcher
(shim_v2/launcher/launcher.c: it answers containerd's after-every-container `delete` itself
when nothing is left, and starts the interpreter with -I -S otherwise); without a C compiler
the Python script bin/containerd-shim-pyrunc-v2 is installed instead.
"""

import os
import subprocess
import sys

from setuptools import Command, setup


def _build_scripts() -> type[Command]:
    """setuptools' own build_scripts class, wherever this version keeps it."""
    try:
        from setuptools.command.build_scripts import build_scripts
    except ImportError:
        from distutils.command.build_scripts import build_scripts  # setuptools' distutils
    return build_scripts


build_scripts = _build_scripts()


class BuildScripts(build_scripts):
    def run(self) -> None:
        super().run()
        out = os.path.join(self.build_dir, "containerd-shim-pyrunc-v2")
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        cmd = [os.environ.get("CC", "cc"), "-O2", f'-DPY_VERSION_DIR="{version}"', "-o",
               out + ".tmp", os.path.join("shim_v2", "launcher", "launcher.c")]
        try:
            subprocess.run(cmd, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"warning: {e}: installing the Python launcher of the shim", file=sys.stderr)
            return
        os.replace(out + ".tmp", out)


setup(
    cffi_modules=[
        "pyrunc/linux/_sys_build.py:ffibuilder",
        "pyrunc/linux/_libseccomp_build.py:ffibuilder",
    ],
    cmdclass={"build_scripts": BuildScripts},
)
