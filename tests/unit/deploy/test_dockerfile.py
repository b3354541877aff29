"""deploy/Dockerfile: one multi-stage, non-root image whose entry points exist."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import yaml

from engagement.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    lines = [line.strip() for line in DOCKERFILE.splitlines()]
    return [line[len(name) + 1 :] for line in lines if line.startswith(name + " ")]


def test_image_is_built_in_several_stages():
    assert len(_instructions("FROM")) >= 2


def test_image_runs_as_a_non_root_user():
    user = _instructions("USER")[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_entrypoint_is_the_engagement_console_script():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    entrypoint = json.loads(_instructions("ENTRYPOINT")[-1])
    assert entrypoint == ["engagement"]
    assert scripts["engagement"] == "engagement.cli:main"


def test_default_command_and_every_compose_and_k8s_command_is_an_engagement_subcommand():
    commands = [json.loads(_instructions("CMD")[-1])[0]]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands += [s["command"][0] for s in compose["services"].values() if "build" in s]
    for path in (ROOT / "deploy" / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Deployment":
                commands += [c["args"][0] for c in doc["spec"]["template"]["spec"]["containers"]]
    assert set(commands) <= set(COMMANDS)
    assert {"ingest", "scorer", "notifier"} <= set(commands)


def test_subcommands_the_image_runs_resolve_to_a_run_function():
    for command in ("ingest", "scorer", "notifier", "dev"):
        module, func, _ = COMMANDS[command]
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{command}: module {module} does not exist"
        source = Path(spec.origin).read_text()
        assert f"def {func}(" in source, f"{command}: {module} has no {func}()"
