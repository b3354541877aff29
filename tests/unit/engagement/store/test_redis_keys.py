"""The key layout: every key of a candidate in its own cluster slot, every tenant-level key in
the tenant's, all under the configured prefix (docs/scoring.md §5)."""

from __future__ import annotations

import re

import pytest

from engagement.store.redis_keys import KeyLayout, glob_literal
from services.ingest.sources import TENANT_ID_PATTERN

HASH_TAG = re.compile(r"\{([^}]*)\}")


def tag(key: str) -> str:
    """The hash tag Redis Cluster slots a key by (the first {...})."""
    found = HASH_TAG.search(key)
    assert found is not None, key
    return found.group(1)


def test_every_key_of_a_candidate_is_in_the_candidates_slot() -> None:
    keys = KeyLayout("p:")
    candidate = keys.candidate("acme", "u1")
    every = [*candidate.all, keys.pending_erasure("acme", "u1")]
    assert len(set(every)) == len(every), "no two are the same key"
    assert {tag(k) for k in every} == {"acme:u1"}
    assert all(k.startswith("p:{acme:u1}:") for k in every)


def test_the_candidate_keys_are_all_of_them_in_the_order_the_erase_script_reads() -> None:
    candidate = KeyLayout("p:").candidate("acme", "u1")
    assert candidate.all[:5] == (
        candidate.profile,
        candidate.dedupe,
        candidate.caps,
        candidate.contributions,
        candidate.merged,
    )


def test_tenant_level_keys_are_in_the_tenants_slot() -> None:
    keys = KeyLayout("p:")
    tenant_keys = [keys.tier_set("acme", "hot"), keys.sequences("acme"), keys.anonymous("acme")]
    assert {tag(k) for k in tenant_keys} == {"acme"}
    assert len(set(tenant_keys)) == 3


def test_two_tenants_or_two_candidates_never_share_a_key() -> None:
    # tenant ids hold no colon (services.ingest.sources.TENANT_ID_PATTERN), so the first colon of
    # a tag ends the tenant: ("a", "b:c") and ("a:b", "c") cannot both exist
    keys = KeyLayout("p:")
    assert re.fullmatch(TENANT_ID_PATTERN, "a:b") is None
    assert keys.tier_set("acme", "hot") != keys.tier_set("acme2", "hot")
    assert keys.candidate("acme", "u1").profile != keys.candidate("acme", "u2").profile
    assert keys.candidate("acme", "anon:u1").profile != keys.candidate("acme", "u1").profile


def test_the_prefix_starts_every_key() -> None:
    keys = KeyLayout("eng:")
    assert keys.erasing.startswith("eng:") and keys.tenants.startswith("eng:")
    assert KeyLayout().prefix == "eng:"


@pytest.mark.parametrize("text", ["plain", "a*b", "q?", "[x]", "back\\slash", "{acme}:*"])
def test_glob_literal_matches_only_itself(text: str) -> None:
    import fnmatch

    pattern = glob_literal(text)
    # Redis's glob escapes like fnmatch's character classes: check by translating the escapes
    unescaped = re.sub(r"\\(.)", r"[\1]", pattern).replace("[[]", "[[]").replace("[]]", "[]]")
    assert fnmatch.fnmatchcase(text, unescaped)
    assert not fnmatch.fnmatchcase(text + "x", unescaped)
