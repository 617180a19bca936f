"""cffi modules are generated at install time, never at run time: the syscall glue (API mode,
compiled) and the libseccomp binding (out-of-line ABI mode: a generated .py, no compiler)."""

from setuptools import setup

setup(
    cffi_modules=[
        "pyrunc/linux/_sys_build.py:ffibuilder",
        "pyrunc/linux/_libseccomp_build.py:ffibuilder",
    ]
)
