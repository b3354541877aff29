"""The score template (docs/design.md §4): a versioned TOML file validated into frozen ``Rules``.

A valid template guarantees: tiers ascending with the first tier the floor (enter = exit = 1),
``exit <= enter`` per tier, ``enter`` of tier k <= ``exit`` of tier k+1 (so decay passes through
every band), the alert tier exists, pillars are the three of docs/design.md §1, half-life > 0.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engagement.model.records import Pillar

SECONDS_PER_DAY = 86400.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierRule(_Frozen):
    """A tier: entered at score >= ``enter``, left when the score falls below ``exit``."""

    name: str = Field(min_length=1)
    enter: int = Field(ge=1, le=100)
    exit: int = Field(ge=1, le=100)


class EventRule(_Frozen):
    """Points one event earns in its pillar; at most ``daily_cap`` per candidate and UTC day."""

    pillar: Pillar
    points: float
    daily_cap: int | None = Field(default=None, ge=1)


class Rules(_Frozen):
    """A validated score template. One half-life per ``version``."""

    version: str = Field(min_length=1)
    half_life_days: float = Field(gt=0)
    score_scale: float = Field(gt=0)
    alert_tier: str
    tiers: tuple[TierRule, ...] = Field(min_length=1)
    job_tiers: tuple[TierRule, ...] | None = Field(
        default=None, min_length=1, description="tiers of (candidate, job) profiles; None: tiers"
    )
    channels: dict[str, float] = Field(default_factory=dict)
    events: dict[str, EventRule] = Field(default_factory=dict)

    @property
    def half_life_seconds(self) -> float:
        """The half-life h in seconds."""
        return self.half_life_days * SECONDS_PER_DAY

    @cached_property
    def tier_names(self) -> tuple[str, ...]:
        """Tier names, lowest first."""
        return tuple(tier.name for tier in self.tiers)

    @cached_property
    def tier_by_number(self) -> dict[str, str]:
        """Tier names by their 1-based number as text (how the Lua scripts return a tier)."""
        return {str(k): name for k, name in enumerate(self.tier_names, start=1)}

    @property
    def tiers_of_jobs(self) -> tuple[TierRule, ...]:
        """The tiers of (candidate, job) profiles: ``job_tiers``, else the candidate's."""
        return self.job_tiers or self.tiers

    @cached_property
    def job_tier_names(self) -> tuple[str, ...]:
        """Job tier names, lowest first."""
        return tuple(tier.name for tier in self.tiers_of_jobs)

    def tier_index(self, name: str) -> int:
        """Index of a tier by name (0 = the floor); ValueError when unknown."""
        return self.tier_names.index(name)

    def multiplier(self, channel: str) -> float:
        """The channel multiplier; 1.0 for channels the template does not name."""
        return self.channels.get(channel, 1.0)

    @model_validator(mode="after")
    def _tiers_consistent(self) -> Rules:
        problems = _tier_problems(self.tiers, self.alert_tier)
        if self.job_tiers is not None:
            problems += [
                (("job_tiers", *loc[1:]), msg)
                for loc, msg in _tier_problems(self.job_tiers, self.alert_tier)
            ]
        if problems:
            raise ValueError("; ".join(f"{dotted(loc)}: {msg}" for loc, msg in problems))
        return self


Loc = tuple[str | int, ...]


def _tier_problems(tiers: tuple[TierRule, ...], alert_tier: str) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    first = tiers[0]
    if first.enter != 1 or first.exit != 1:
        problems.append((("tiers", 0), f"{first.name} is the floor: enter and exit must be 1"))
    for k, tier in enumerate(tiers):
        if tier.exit > tier.enter:
            problems.append((("tiers", k, "exit"), f"must be <= enter ({tier.enter})"))
    for k in range(1, len(tiers)):
        low, high = tiers[k - 1], tiers[k]
        if high.enter <= low.enter:
            problems.append(
                (("tiers", k, "enter"), f"must be above {low.name}'s enter ({low.enter})")
            )
        if low.enter > high.exit:
            problems.append((("tiers", k, "exit"), f"must be >= {low.name}'s enter ({low.enter})"))
    names = [tier.name for tier in tiers]
    if len(set(names)) != len(names):
        problems.append((("tiers",), "tier names must be unique"))
    if alert_tier not in names:
        problems.append((("alert_tier",), f"{alert_tier!r} is not one of the tiers {names}"))
    return problems


class RulesError(ValueError):
    """A template that cannot be used; ``problems`` lists (location, message) pairs."""

    def __init__(self, path: str, problems: list[tuple[Loc, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{dotted(loc) or '<file>'}: {msg}" for loc, msg in problems]
        super().__init__(f"invalid rules file {path}:\n  " + "\n  ".join(lines))


def parse_rules(data: dict[str, Any], *, source: str = "<rules>") -> Rules:
    """Validate a decoded template; RulesError lists every problem."""
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[Loc, str]] = []
        for err in exc.errors():
            if err["loc"]:
                problems.append((tuple(err["loc"]), err["msg"]))
            else:  # the whole-template check: re-run it to name each field
                problems.extend(_located_tier_problems(data) or [((), err["msg"])])
        # pydantic skips the whole-template check when a field failed: run it for every problem
        problems += [p for p in _located_tier_problems(data) if p not in problems]
        raise RulesError(source, problems) from exc


def _located_tier_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    try:
        tiers = tuple(TierRule.model_validate(t) for t in data.get("tiers", ()))
    except (ValidationError, TypeError):
        return []
    return _tier_problems(tiers, str(data.get("alert_tier"))) if tiers else []


def dotted(loc: Loc) -> str:
    """``tiers[1].exit``, ``events."Page Viewed".points``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out == "events":
            out += f'."{part}"' if not part.isidentifier() else f".{part}"
        else:
            out += f".{part}" if out else part
    return out


def load_rules(path: str | Path) -> Rules:
    """Read and validate a TOML template; RulesError on bad TOML or bad values."""
    return parse_template(Path(path).read_text(encoding="utf-8"), source=str(path))


def parse_template(text: str, *, source: str = "<rules>", media: str = "toml") -> Rules:
    """Validate a template's text (``media``: ``toml`` or ``json``, the same structure);
    RulesError lists every problem, a syntax error as the one problem."""
    try:
        data = json.loads(text) if media == "json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as exc:
        kind = "JSON" if media == "json" else "TOML"
        raise RulesError(source, [((), f"{kind} syntax: {exc}")]) from exc
    if not isinstance(data, dict):
        raise RulesError(source, [((), "the template must be a table (JSON object)")])
    return parse_rules(data, source=source)


@dataclass(frozen=True)
class Problem:
    """One problem of a template: its line in the text (None when unknown), field and message."""

    line: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, int | str | None]:
        """``{"line", "field", "message"}``, as the API answers it."""
        return {"line": self.line, "field": self.field, "message": self.message}


def problems_of(error: RulesError, text: str, *, media: str = "toml") -> list[Problem]:
    """Every problem of ``error`` with its line in ``text`` (TOML: the key's or table's line;
    JSON: the line of the key's first occurrence; a syntax error: the line it names)."""
    lines = locate_lines(text) if media == "toml" else {}
    found: list[Problem] = []
    for loc, message in error.problems:
        line = line_of(loc, lines) or _syntax_line(message) or _json_line(loc, text, media)
        found.append(Problem(line, dotted(loc) or "<file>", message))
    return found


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?")
_KEY = re.compile(r'^\s*("[^"]+"|[A-Za-z0-9_-]+)\s*=')


def locate_lines(text: str) -> dict[Loc, int]:
    """Map TOML locations (``("tiers", 1, "exit")``, ``("events", "Ad Clicked")``) to lines."""
    found: dict[Loc, int] = {}
    table: Loc = ()
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _table_loc(header.group(1), header.group(2), counts)
            found.setdefault(table, number)
            found.setdefault(table[:1], number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((*table, key.group(1).strip('"')), number)
    return found


def _table_loc(brackets: str, name: str, counts: dict[str, int]) -> Loc:
    parts = [p.strip('"') for p in re.findall(r'"[^"]*"|[^.\s]+', name)]
    if brackets == "[[":
        index = counts.get(name, 0)
        counts[name] = index + 1
        return (*parts, index)
    return tuple(parts)


def _syntax_line(message: str) -> int | None:
    match = re.search(r"at line (\d+)|line (\d+) column", message)
    return int(match.group(1) or match.group(2)) if match else None


def _json_line(loc: Loc, text: str, media: str) -> int | None:
    """JSON: the line of the last named key of ``loc`` (its first occurrence; a guide only)."""
    names = [part for part in loc if isinstance(part, str)]
    if media != "json" or not names:
        return None
    at = text.find(json.dumps(names[-1]))
    return None if at < 0 else text.count("\n", 0, at) + 1


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the longest known prefix of ``loc`` (None when nothing matches)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
