"""The repository cites only what it contains: every file path and every module that the docs,
the code's comments and the configuration name exists (a move or rename that forgets one fails
here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
TEXT = (".md", ".py", ".toml", ".yml", ".yaml", ".sh", ".lua", ".html", ".js", "Makefile")
PATH = re.compile(
    r"(?<![\w./-])((?:src|services|engagement|tests|bench|docs|deploy|scripts)/[\w./-]*[\w/])"
)
PACKAGES = r"(?:engagement\.(?:model|kafka|store|faust|tools|erasure)|services\.(?:ingest|scorer|notifier|lag_exporter))"
MODULE = re.compile(rf"(?<![\w./])({PACKAGES}(?:\.[a-z_]\w*)*)")


def tracked() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.split() if (ROOT / name).is_file()]


def texts() -> list[tuple[str, str]]:
    return [(name, (ROOT / name).read_text()) for name in tracked() if name.endswith(TEXT)]


def modules() -> set[str]:
    found = set()
    for name in tracked():
        if name.endswith(".py"):
            path = PurePosixPath(name.removeprefix("src/")).with_suffix("")
            parts = path.parts[:-1] if path.name == "__init__" else path.parts
            found.add(".".join(parts))
    return found


def test_every_path_cited_exists() -> None:
    missing = [
        f"{name}: {cited}"
        for name, text in texts()
        for cited in (m.group(1).rstrip("/.") for m in PATH.finditer(text))
        if not (ROOT / cited).exists() and not (ROOT / "src" / cited).exists()
    ]
    assert missing == []


def test_every_module_cited_exists() -> None:
    known = modules()
    missing = []
    for name, text in texts():
        for match in MODULE.finditer(text):
            parts = match.group(1).split(".")
            prefixes = [".".join(parts[:k]) for k in range(len(parts), 1, -1)]
            longest = next((p for p in prefixes if p in known), None)
            if longest is None:
                missing.append(f"{name}: {match.group(1)}")
    assert missing == []
