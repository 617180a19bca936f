"""The documents a fresh clone holds link only to what a fresh clone holds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _docs() -> list[Path]:
    return [REPO / "README.md", REPO / "conformance" / "README.md", *sorted(REPO.glob("docs/*.md"))]


def _tracked() -> set[str]:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = set(out.splitlines())
    dirs = {str(Path(f).parent) for f in files}
    while True:  # every ancestor directory of a tracked file
        more = {str(Path(d).parent) for d in dirs} - dirs
        if not more:
            return files | dirs
        dirs |= more


@pytest.mark.parametrize("doc", _docs(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve_in_a_clone(doc: Path) -> None:
    """Every relative link names a file git tracks (not one outside the repository, such as
    the team's ../shared/, nor one only this machine has)."""
    tracked = _tracked()
    broken = []
    for target in LINK.findall(doc.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (doc.parent / target).resolve()
        try:
            rel = str(resolved.relative_to(REPO))
        except ValueError:
            broken.append(f"{target} (outside the repository)")
            continue
        if rel not in tracked:
            broken.append(target)
    assert not broken, f"{doc.name}: links that a fresh clone cannot follow: {broken}"


def test_architecture_document_exists() -> None:
    assert (REPO / "docs" / "architecture.md").is_file()
