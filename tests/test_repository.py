"""The repository stands alone: nothing it holds points outside it or at a file it lacks."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTSIDE = re.compile(r"\.\./shared|shared/notes")
DOC_PATH = re.compile(r"(?<![/\w])docs/[A-Za-z0-9_.-]+\.md\b")
MODULE = re.compile(r"\bshared\.([a-z_]+)\b")
MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TEXT = (".py", ".md", ".json", ".txt", ".toml", ".yaml", ".yml", ".sh", ".bicep", ".cfg")


def tracked() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / n for n in names.splitlines() if n.endswith(TEXT) or n == "Makefile"]


def problems(path: Path, text: str) -> list[str]:
    """Each reference in ``text`` (a file at ``path``) that leaves the repository or is dead."""
    found = [f"points outside the repository: {m.group(0)!r}" for m in OUTSIDE.finditer(text)]
    found += [f"no such file: {m.group(0)}" for m in DOC_PATH.finditer(text) if not (ROOT / m.group(0)).exists()]
    if path.suffix in (".py", ".md"):
        for m in MODULE.finditer(text):
            if m.group(1) not in ("test",) and not ((ROOT / "shared" / f"{m.group(1)}.py").exists()
                                                    or (ROOT / "shared" / m.group(1)).is_dir()):
                found.append(f"no such module: shared.{m.group(1)}")
    if path.suffix == ".md":
        for m in MD_LINK.finditer(text):
            target = m.group(1)
            if "://" not in target and not target.startswith("mailto:") and not (path.parent / target).exists():
                found.append(f"dead link: {target}")
    return found


def test_nothing_refers_outside_the_repository_or_to_a_missing_file():
    report = {}
    for path in tracked():
        if path == Path(__file__).resolve():
            continue
        found = problems(path, path.read_text(encoding="utf-8", errors="replace"))
        if found:
            report[str(path.relative_to(ROOT))] = found
    assert report == {}


def test_the_check_catches_each_kind_of_broken_reference():
    text = ("see ../shared/x.md and shared/notes/durable-protocol.md, docs/reconciliation.md;\n"
            "classes in shared.outcomes; [gone](no-such-page.md) but [fine](local-host.md)")
    assert problems(ROOT / "docs" / "x.md", text) == [
        "points outside the repository: '../shared'",
        "points outside the repository: 'shared/notes'",
        "no such file: docs/reconciliation.md",
        "no such module: shared.outcomes",
        "dead link: no-such-page.md",
    ]
