"""deploy/requirements.lock pins every dependency of the project, with hashes, for the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
LOCK = (ROOT / "deploy" / "requirements.lock").read_text()
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", re.M)


def _pins() -> dict[str, str]:
    return {canonicalize_name(name): version for name, _, version in PIN.findall(LOCK)}


def test_every_project_dependency_is_pinned_within_its_range():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins()
    for requirement in map(Requirement, dependencies):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} missing: regenerate deploy/requirements.lock (its header)"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_every_pin_carries_hashes_so_pip_can_require_them():
    body = "\n".join(line for line in LOCK.splitlines() if not line.startswith("#"))
    entries = re.split(r"\n(?=[A-Za-z0-9])", body)
    pinned = [e for e in entries if PIN.match(e)]
    assert len(pinned) == len(_pins()) > 0
    assert all("--hash=sha256:" in entry for entry in pinned)


def test_the_image_installs_the_lock_with_hashes_required():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "COPY deploy/requirements.lock" in dockerfile
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
