"""The ``engagement`` command: one entry point for every service and tool."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# subcommand -> (module, function, help); imported lazily so `engagement --help` stays fast.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "ingest": ("services.ingest.main", "run", "the HTTP ingest and read API"),
    "scorer": ("services.scorer.main", "run", "the Faust scorer worker"),
    "notifier": ("services.notifier.main", "run", "the Faust notifier worker"),
    "lag-exporter": (
        "services.lag_exporter.main",
        "run",
        "the scorer's and notifier's consumer lag, read from the broker, on /metrics",
    ),
    "dev": (
        "engagement.tools.devstack.main",
        "run",
        "the whole pipeline locally, with demo traffic",
    ),
    "rules": (
        "engagement.tools.rules_cli",
        "run",
        "score template tools: `engagement rules check FILE`",
    ),
    "dlq": (
        "engagement.tools.dlq_replay",
        "run",
        "send dead-lettered records back once fixed: `engagement dlq replay --topic interactions`",
    ),
    "rebuild": (
        "engagement.tools.tenant_rebuild",
        "run",
        "finish a rebuild into a new key prefix: `engagement rebuild finish --from-prefix OLD`;"
        " rebuild one tenant under its newest template: `engagement rebuild --tenant T`",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``engagement <command> [args...]`` to the command's ``run(argv)``."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="engagement", description=__doc__)
    parser.add_argument(
        "command",
        choices=sorted(COMMANDS),
        help="; ".join(f"{name}: {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())),
    )
    if not args or args[0] in {"-h", "--help"}:
        parser.print_help()
        return 0 if args else 2
    parsed, _rest = parser.parse_known_args(args[:1])
    module, func, _ = COMMANDS[parsed.command]
    entry: Callable[[list[str]], int | None] = getattr(importlib.import_module(module), func)
    return int(entry(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
