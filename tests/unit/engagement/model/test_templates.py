"""The template registry (engagement.model.templates): tenant -> rules, the default for the
others, versions in topic order, and no live change of a tenant's half-life."""

from __future__ import annotations

from pathlib import Path

from engagement.model.rules import load_rules
from engagement.model.templates import Templates, TemplateVersion

DEFAULT = load_rules(Path(__file__).resolve().parents[4] / "config" / "rules.toml")


def version(tenant: str, name: str, *, half_life: float = 30.0, state: str = "active",
            rebuilt: bool = False) -> TemplateVersion:  # fmt: skip
    rules = DEFAULT.model_copy(update={"version": name, "half_life_days": half_life})
    return TemplateVersion(tenant, rules, "", "toml", state, "t", "t", rebuilt)  # type: ignore[arg-type]


def test_a_tenant_without_a_version_is_scored_with_the_default():
    templates = Templates(DEFAULT)
    templates.apply(version("a", "a-1"))
    assert templates.rules_for("b") is DEFAULT
    assert templates.rules_for("a").version == "a-1"


def test_the_last_active_version_in_topic_order_is_in_force():
    templates = Templates(DEFAULT)
    for name in ("a-1", "a-2", "a-3"):
        assert templates.apply(version("a", name))
    assert templates.rules_for("a").version == "a-3"
    assert [v.version for v in templates.versions("a")] == ["a-1", "a-2", "a-3"]


def test_another_half_life_is_never_in_force_without_a_rebuild():
    templates = Templates(DEFAULT)
    templates.apply(version("a", "a-1"))
    assert not templates.apply(version("a", "a-2", half_life=7))  # written active by mistake
    assert templates.rules_for("a").version == "a-1"
    assert templates.versions("a")[-1].state == "pending"
    assert templates.state_for("a", version("a", "x", half_life=7).rules) == "pending"
    assert templates.apply(version("a", "a-2", half_life=7, rebuilt=True))
    assert templates.rules_for("a").half_life_days == 7


def test_a_late_pending_copy_does_not_demote_a_version_in_force():
    templates = Templates(DEFAULT)
    templates.apply(version("a", "a-1"))
    templates.apply(version("a", "a-1", state="pending"))
    active = templates.active("a")
    assert active is not None and active.version == "a-1"
    assert [v.state for v in templates.versions("a")] == ["active"]
