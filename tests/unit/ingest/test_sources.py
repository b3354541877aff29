"""Sources and keys: lookups by key, tenant scoping, config files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ingest.sources import load_sources, parse_sources

REGISTRY = parse_sources(
    {
        "sources": [
            {
                "source_id": "site",
                "tenant_id": "acme",
                "write_key": "wk_a",
                "allowed_origins": ["https://a.example"],
            },
            {"source_id": "ads", "tenant_id": "globex", "channel": "ad", "write_key": "wk_g"},
        ],
        "read_keys": [{"key": "rk_a", "tenant_id": "acme"}],
        "admin_keys": [{"key": "ak_g", "tenant_id": "globex"}],
    }
)


def test_write_key_finds_its_source():
    source = REGISTRY.source_for_write_key("wk_g")
    assert source is not None
    assert (source.source_id, source.tenant_id, source.channel) == ("ads", "globex", "ad")
    assert source.ce_source == "/tenants/globex/sources/ads"


@pytest.mark.parametrize("key", [None, "", "wk_", "wk_a ", "WK_A", "rk_a", "wk_ä"])
def test_unknown_or_partial_keys_find_nothing(key):
    assert REGISTRY.source_for_write_key(key) is None


def test_admin_keys_also_read_but_read_keys_do_not_administer():
    assert REGISTRY.tenant_for_read_key("rk_a") == "acme"
    assert REGISTRY.tenant_for_read_key("ak_g") == "globex"
    assert REGISTRY.tenant_for_admin_key("ak_g") == "globex"
    assert REGISTRY.tenant_for_admin_key("rk_a") is None
    assert REGISTRY.tenant_for_read_key("wk_a") is None


def test_allowed_origins_are_the_union_over_sources():
    assert REGISTRY.allowed_origins == frozenset({"https://a.example"})


def test_a_source_without_write_key_is_invalid():
    with pytest.raises(ValidationError):
        parse_sources({"sources": [{"source_id": "s", "tenant_id": "t"}]})


def test_shipped_dev_config_file_is_valid():
    # config/sources.toml is a template, refused until its keys are replaced (test_sources_file)
    root = Path(__file__).resolve().parents[3]
    assert load_sources(root / "config/dev/sources.toml").sources


def test_dev_keys_belong_to_the_demo_tenant():
    root = Path(__file__).resolve().parents[3]
    registry = load_sources(root / "config/dev/sources.toml")
    assert registry.source_for_write_key("dev_write_key").tenant_id == "demo"
    assert registry.tenant_for_read_key("dev_read_key") == "demo"
    assert registry.tenant_for_admin_key("dev_admin_key") == "demo"
