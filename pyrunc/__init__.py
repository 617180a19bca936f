"""pyrunc: a runc-compatible OCI container runtime."""

__version__ = "0.1.0"
# The newest runtime-spec whose fields pyrunc handles: `features` says it as ociVersionMax and
# `--version` as "spec:", where runc says the specs.Version of the runtime-spec it vendors (runc
# 1.1.5: 1.0.2-dev; runc 1.3: 1.2.1, without netDevices, memoryPolicy or the new intelRdt fields;
# runc 1.4: 1.3.0, with them). Every Linux field 1.2 and 1.3 add is implemented (idmapped mounts,
# process.scheduler/ioPriority/execCPUAffinity, linux.netDevices, linux.memoryPolicy,
# intelRdt.schemata/enableMonitoring and closID "/"), and so is 1.3's failing poststart hook, so
# 1.3.0 it is. `pyrunc spec` does not write this: it writes what runc 1.1.5's `spec` writes
# (specgen.OCI_VERSION, 1.0.2-dev), which runc's bats suite and scripts build their bundles from;
# a container's state keeps its config's ociVersion, as runc's does.
OCI_VERSION = "1.3.0"


def version_text() -> str:
    """`pyrunc --version`, in runc's layout (tools parse the first line's version)."""
    import sys

    return (
        f"pyrunc version {__version__}\ncommit: pyrunc-{__version__}\nspec: {OCI_VERSION}\n"
        f"python: {sys.version.split()[0]}\n"
    )
