"""pyrunc: a runc-compatible OCI container runtime."""

__version__ = "0.1.0"
OCI_VERSION = "1.0.2-dev"


def version_text() -> str:
    """`pyrunc --version`, in runc's layout (tools parse the first line's version)."""
    import sys

    return (
        f"pyrunc version {__version__}\ncommit: pyrunc-{__version__}\nspec: {OCI_VERSION}\n"
        f"python: {sys.version.split()[0]}\n"
    )
