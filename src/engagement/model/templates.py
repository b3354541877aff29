"""Which score template each tenant is scored with (docs/scoring.md §4): its own, else the default.

A tenant's template versions arrive in one order for every process (the rules topic, one
partition: ``engagement.kafka.rules_topic``) and ``Templates.apply`` folds them in that order, so
every ingest, scorer and notifier that has read up to the same offset scores a tenant with the
same rules. The invariant the registry protects:

    ``rules_for(T)`` is T's last version made active, in topic order, else the default; and its
    half-life is the half-life T's stored sums and rank keys were computed with. A version whose
    half-life differs from T's current one is kept as ``pending`` and is never used for scoring
    until a rebuild of T activates it (``rebuilt=True``): rank keys order candidates only under
    one half-life (docs/design.md §4), so a live change of it would misorder every leaderboard.
    ``generation(T)`` names the keys T is scored on: a rebuild of T scores its history into the
    next generation and its activation (``rebuilt=True``, that generation) moves every process
    over (``services.scorer.tenant_rebuild``); generations only grow.

Nothing here does IO; ``engagement.kafka.rules_topic`` follows the topic and calls ``apply``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from engagement.model.rules import Rules

State = Literal["active", "pending"]


@dataclass(frozen=True)
class TemplateVersion:
    """One version of a tenant's template as stored: its rules, the text it was sent as (TOML or
    JSON), whether it is in force (``active``) or waits for a rebuild (``pending``)."""

    tenant_id: str
    rules: Rules
    text: str
    media: Literal["toml", "json"]
    state: State
    created_at: str
    activated_at: str | None = None
    rebuilt: bool = False
    generation: int = 0  # the tenant's keys it is in force on (a rebuild makes a new one)

    @property
    def version(self) -> str:
        """The template's own ``version`` string (unique per tenant)."""
        return self.rules.version

    def summary(self) -> dict[str, object]:
        """The version without its text, as ``GET /v1/rules/versions`` lists it."""
        return {
            "version": self.version,
            "state": self.state,
            "halfLifeDays": self.rules.half_life_days,
            "createdAt": self.created_at,
            "activatedAt": self.activated_at,
            "rebuilt": self.rebuilt,
            "generation": self.generation,
        }


@dataclass
class _History:
    versions: list[TemplateVersion] = field(default_factory=list)
    active: TemplateVersion | None = None


class Templates:
    """Tenant → the rules it is scored with, the default for tenants without their own.

    Read on every batch (``rules_for`` is one dict lookup) and changed only by ``apply``.
    """

    def __init__(self, default: Rules) -> None:
        self.default = default
        self._history: dict[str, _History] = {}
        self._rules: dict[str, Rules] = {}

    def rules_for(self, tenant_id: str) -> Rules:
        """The rules the tenant's events are scored with now."""
        return self._rules.get(tenant_id, self.default)

    @property
    def own(self) -> Mapping[str, Rules]:
        """The tenants with a template of their own, and its rules (read-only view)."""
        return self._rules

    def generation(self, tenant_id: str) -> int:
        """The generation of the tenant's keys now (0 until a rebuild of the tenant)."""
        history = self._history.get(tenant_id)
        return 0 if history is None or history.active is None else history.active.generation

    def versions(self, tenant_id: str) -> list[TemplateVersion]:
        """The tenant's versions, oldest first (the last one stored of each version string)."""
        history = self._history.get(tenant_id)
        return [] if history is None else list(history.versions)

    def active(self, tenant_id: str) -> TemplateVersion | None:
        """The tenant's version in force; None when it is scored with the default."""
        history = self._history.get(tenant_id)
        return None if history is None else history.active

    def state_for(self, tenant_id: str, rules: Rules) -> State:
        """The state a new version of the tenant is stored in: ``pending`` when its half-life
        differs from the one the tenant is scored with (it needs a rebuild), else ``active``."""
        return "active" if _same_half_life(rules, self.rules_for(tenant_id)) else "pending"

    def apply(self, version: TemplateVersion) -> bool:
        """Fold in the next stored version (in topic order); True when the rules of its tenant
        changed. An ``active`` version with another half-life that no rebuild made is kept
        ``pending`` (the invariant above), whatever wrote it; so is a version that names another
        generation than the tenant's without being a rebuild's, or an older one (a late copy)."""
        history = self._history.setdefault(version.tenant_id, _History())
        current = self.rules_for(version.tenant_id)
        generation = self.generation(version.tenant_id)
        if version.state == "active" and (
            (not version.rebuilt and not _same_half_life(version.rules, current))
            or version.generation < generation
            or (version.generation > generation and not version.rebuilt)
        ):
            version = replace(version, state="pending", activated_at=None)
        if version.state != "active":
            if any(v.version == version.version for v in history.versions):
                return False  # a version already stored (or in force) is not demoted
            history.versions.append(version)
            return False
        history.versions = [v for v in history.versions if v.version != version.version]
        history.versions.append(version)
        history.active = version
        before = self._rules.get(version.tenant_id)
        self._rules[version.tenant_id] = version.rules
        return before != version.rules or version.generation != generation


def _same_half_life(a: Rules, b: Rules) -> bool:
    return a.half_life_seconds == b.half_life_seconds
