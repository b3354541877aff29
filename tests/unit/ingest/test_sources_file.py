"""The sources file is refused at startup when a tenant id could alias another tenant's keys, a
key is used twice, or a key is still a placeholder; the shipped files start (or are refused)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engagement.store.redis_keys import KeyLayout
from services.ingest.sources import TENANT_ID_PATTERN, SourcesFileError, load_sources, parse_sources

ROOT = Path(__file__).resolve().parents[3]


def _sources(tenant: str) -> dict[str, object]:
    return {
        "sources": [{"source_id": "s", "tenant_id": tenant, "write_key": "wk_1"}],
        "read_keys": [{"key": "rk_1", "tenant_id": tenant}],
    }


@pytest.mark.parametrize("tenant", ["demo:eu", "", "a b", "x" * 65, "zoë", "a/b", "{t}", "t\n"])
def test_a_tenant_id_outside_the_pattern_is_refused(tenant: str):
    with pytest.raises(ValueError, match="tenant_id"):
        parse_sources(_sources(tenant))


@pytest.mark.parametrize("tenant", ["demo", "A-b_9", "x" * 64, "-", "_"])
def test_a_tenant_id_of_the_pattern_is_accepted(tenant: str):
    assert parse_sources(_sources(tenant)).tenant_for_read_key("rk_1") == tenant


TWICE = """\
[[sources]]
source_id = "site"
tenant_id = "acme"
write_key = "wk_shared"

[[read_keys]]
key = "rk_acme"
tenant_id = "acme"

[[admin_keys]]
key = "wk_shared"
tenant_id = "globex"
"""


def test_a_key_used_twice_is_refused_naming_both_lines(tmp_path: Path):
    # given a write key of acme that is also globex's admin key
    path = tmp_path / "sources.toml"
    path.write_text(TWICE)
    # when the file is loaded, then it is refused, naming both lines
    with pytest.raises(SourcesFileError) as refused:
        load_sources(path)
    message = str(refused.value)
    assert f"{path}:4:" in message and "lines 4, 11" in message
    assert "wk_shared" not in message  # a secret is never printed


@pytest.mark.parametrize(
    "key",
    ["ak_change_me", "REPLACE_ME", "rk_REPLACE-ME", "wk_changeme_site", "change_me", "ChangeMe"],
)
def test_a_placeholder_key_is_refused_naming_its_line(tmp_path: Path, key: str):
    path = tmp_path / "sources.toml"
    path.write_text(TWICE.replace('key = "rk_acme"', f'key = "{key}"'))
    with pytest.raises(SourcesFileError, match=rf"{path}:7: read_keys\[0\]\.key is a placeholder"):
        load_sources(path)


def test_a_placeholder_hook_secret_is_refused(tmp_path: Path):
    path = tmp_path / "sources.toml"
    hook = 'hook_provider = "generic"\nhook_secret = "whsec_REPLACE_ME"\n'
    path.write_text(TWICE.replace('write_key = "wk_shared"\n', 'write_key = "wk_shared"\n' + hook))
    with pytest.raises(SourcesFileError, match=r":6: sources\[0\]\.hook_secret is a placeholder"):
        load_sources(path)


def test_the_production_template_is_refused_until_its_keys_are_replaced():
    with pytest.raises(SourcesFileError, match="placeholder"):
        load_sources(ROOT / "config/sources.toml")


@pytest.mark.parametrize("path", ["config/dev/sources.toml", "deploy/compose/sources.toml"])
def test_the_dev_and_compose_files_start(path: str):
    assert load_sources(ROOT / path).tenant_for_admin_key("dev_admin_key") == "demo"


def _every_key(layout: KeyLayout, tenant: str, candidate: str) -> set[str]:
    return {
        *layout.candidate(tenant, candidate).all,
        layout.pending_erasure(tenant, candidate),
        layout.notified(f"{tenant}:{candidate}"),
    }


def _tenant_keys(layout: KeyLayout, tenant: str) -> set[str]:
    return {layout.tier_set(tenant, "hot"), layout.sequences(tenant)}


def test_the_issues_two_pairs_cannot_both_exist():
    # tenant demo + candidate eu:bob and tenant demo:eu + candidate bob shared every key
    layout = KeyLayout("eng:")
    assert _every_key(layout, "demo", "eu:bob") == _every_key(layout, "demo:eu", "bob")
    # the second tenant id is refused, so the keys of a valid tenant are its own
    with pytest.raises(ValueError, match="tenant_id"):
        parse_sources(_sources("demo:eu"))


tenants = st.from_regex(TENANT_ID_PATTERN, fullmatch=True)


@given(tenants, st.text(min_size=1), tenants, st.text(min_size=1))
def test_two_valid_tenant_candidate_pairs_never_share_a_key(t1, c1, t2, c2):
    layout = KeyLayout("eng:")
    first, second = _every_key(layout, t1, c1), _every_key(layout, t2, c2)
    if (t1, c1) != (t2, c2):
        assert not first & second
    if t1 != t2:
        assert not _tenant_keys(layout, t1) & _tenant_keys(layout, t2)
    assert not (first | second) & (_tenant_keys(layout, t1) | _tenant_keys(layout, t2))
    shared = {
        layout.erasing,
        layout.tenants,
        layout.notifier_sweep("lock"),
        layout.webhooks + "due",
    }
    assert not (first | _tenant_keys(layout, t1)) & shared
