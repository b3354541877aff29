"""The score template (docs/design.md §4): a versioned TOML file validated into frozen ``Rules``.

A valid template guarantees: tiers ascending with the first tier the floor (enter = exit = 1),
``exit <= enter`` per tier, ``enter`` of tier k <= ``exit`` of tier k+1 (so decay passes through
every band), the alert tier exists, pillars are the three of docs/design.md §1, half-life > 0.
"""

from __future__ import annotations

import tomllib
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
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(str(path), [((), f"TOML syntax: {exc}")]) from exc
    return parse_rules(data, source=str(path))
