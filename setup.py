"""cffi's API mode needs setup() to build the syscall glue at install time (not at run time)."""

from setuptools import setup

setup(cffi_modules=["pyrunc/linux/_sys_build.py:ffibuilder"])
