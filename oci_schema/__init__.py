"""JSON Schemas for the OCI documents pyrunc reads and writes.

The schemas are data files next to this module; this package exists only to locate them, so it
imports nothing but `os` (the runtime's hot path imports it on every `create`).
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def schema_path(name: str) -> str:
    """Path of `<name>-schema.json`; a name without the suffix keeps callers free of file layout."""
    if not name.endswith(".json"):
        name += "-schema.json"
    return os.path.join(_HERE, name)
