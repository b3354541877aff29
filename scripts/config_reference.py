"""Print the configuration reference from the settings classes: `.env.example` or a README table.

Usage: python scripts/config_reference.py write   (rewrites .env.example and README's table)
       python scripts/config_reference.py env | markdown   (print one of them)
A test (tests/unit/test_configuration_reference.py) fails when either file falls behind.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

SETTINGS = (
    ("all services", "engagement.settings", "CommonSettings"),
    ("ingest", "services.ingest.settings", "IngestSettings"),
    ("scorer", "services.scorer.settings", "ScorerSettings"),
    ("notifier", "services.notifier.settings", "NotifierSettings"),
    ("lag exporter", "services.lag_exporter.settings", "LagExporterSettings"),
    ("engagement dev", "engagement.tools.devstack.settings", "DevSettings"),
)


def sections() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Return (section, [(VARIABLE, default, description)]) with each variable in its first section."""
    seen: set[str] = set()
    result = []
    for title, module, name in SETTINGS:
        cls = getattr(importlib.import_module(module), name)
        rows = []
        for field_name, field in cls.model_fields.items():
            variable = (field.alias or field_name).upper()
            if variable not in seen:
                seen.add(variable)
                rows.append((variable, _default(field.default), field.description or ""))
        result.append((title, rows))
    return result


def _default(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def env_file() -> str:
    lines = ["# Every variable the services read, with its default. Copy to .env and edit.", ""]
    for title, rows in sections():
        lines.append(f"# --- {title}")
        for variable, default, description in rows:
            lines += [f"# {description}", f"{variable}={default}"]
        lines.append("")
    return "\n".join(lines)


def markdown() -> str:
    lines = []
    for title, rows in sections():
        lines += [f"**{title}**", "", "| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{v}` | `{d}` | {m} |" if d else f"| `{v}` | | {m} |" for v, d, m in rows]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write(root: Path) -> None:
    """Rewrite .env.example and the README's configuration table from the settings classes."""
    (root / ".env.example").write_text(env_file())
    readme = root / "README.md"
    text = readme.read_text()
    start, end = "<!-- config:start", "<!-- config:end -->"
    head, rest = text.split(start, 1)
    marker_line, _ = rest.split("\n", 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}{marker_line}\n{markdown()}{end}{tail}")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "markdown"
    if command == "write":
        write(Path(__file__).resolve().parents[1])
    else:
        print(env_file() if command == "env" else markdown(), end="")
