"""Every variable a service reads is documented in .env.example and in the README."""

from __future__ import annotations

from pathlib import Path

from scripts.config_reference import sections

ROOT = Path(__file__).resolve().parents[2]


def _variables() -> list[str]:
    return [variable for _, rows in sections() for variable, _, _ in rows]


def test_env_example_lists_every_variable() -> None:
    text = (ROOT / ".env.example").read_text()
    missing = [v for v in _variables() if f"\n{v}=" not in text]
    assert not missing, f"add to .env.example (scripts/config_reference.py env): {missing}"


def test_readme_documents_every_variable() -> None:
    text = (ROOT / "README.md").read_text()
    missing = [v for v in _variables() if f"`{v}`" not in text]
    assert not missing, f"add to README.md (scripts/config_reference.py markdown): {missing}"
