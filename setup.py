"""cffi modules are generated at install time, never at run time: the syscall glue (API mode,
compiled) and the libseccomp binding (out-of-line ABI mode: a generated .py, no compiler).

pyrunc, pyctr and containerd-shim-pyrunc-v2 are installed as small compiled launchers (launcher/*.c):
they start the interpreter with -I -S (~3.5 ms less per command than a `#!python` script with
its site), and the shim's answers containerd's after-every-container `delete` itself when
nothing is left. Without a C compiler the Python scripts in bin/ are installed instead.
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
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        for name in ("pyrunc", "containerd-shim-pyrunc-v2", "pyctr"):
            out = os.path.join(self.build_dir, name)
            cmd = [os.environ.get("CC", "cc"), "-O2", f'-DPY_VERSION_DIR="{version}"', "-o",
                   out + ".tmp", os.path.join("launcher", name + ".c")]
            try:
                subprocess.run(cmd, check=True)
            except (OSError, subprocess.CalledProcessError) as e:
                print(f"warning: {e}: installing the Python script {name}", file=sys.stderr)
                continue
            os.replace(out + ".tmp", out)


setup(
    cffi_modules=[
        "pyrunc/linux/_sys_build.py:ffibuilder",
        "pyrunc/linux/_libseccomp_build.py:ffibuilder",
    ],
    cmdclass={"build_scripts": BuildScripts},
)
