"""The generation of a tenant's keys in the template registry (engagement.model.templates): only
a rebuild's activation moves it, only forward; the others stay on generation 0."""

from __future__ import annotations

from dataclasses import replace

from engagement.model.templates import Templates
from tests.unit.engagement.model.test_templates import version


def test_a_rebuilds_activation_moves_the_tenant_to_its_generation():
    templates = Templates(version("x", "d").rules)
    templates.apply(version("a", "a-1"))
    assert templates.generation("a") == 0
    assert templates.apply(replace(version("a", "a-2", half_life=7, rebuilt=True), generation=1))
    assert (templates.generation("a"), templates.rules_for("a").version) == (1, "a-2")
    assert templates.generation("b") == 0, "the others stay"


def test_only_a_rebuild_names_a_new_generation():
    templates = Templates(version("x", "d").rules)
    templates.apply(version("a", "a-1"))
    assert not templates.apply(replace(version("a", "a-2"), generation=1))
    assert templates.generation("a") == 0 and templates.rules_for("a").version == "a-1"


def test_a_version_of_an_older_generation_is_never_in_force_again():
    templates = Templates(version("x", "d").rules)
    templates.apply(replace(version("a", "a-2", rebuilt=True), generation=1))
    assert not templates.apply(version("a", "a-3"))  # written for generation 0, read late
    assert templates.generation("a") == 1 and templates.rules_for("a").version == "a-2"
    assert templates.apply(replace(version("a", "a-4"), generation=1))  # a live change there
    assert templates.rules_for("a").version == "a-4"
