"""IP truncation (/24, /48) and analytics consent."""

from __future__ import annotations

import pytest

from services.ingest.privacy import analytics_consent, consent_allows, truncate_ip


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("not an ip", None),
        ("", None),
        (None, None),
    ],
)
def test_ip_is_truncated_to_its_network(address, truncated):
    assert truncate_ip(address) == truncated


@pytest.mark.parametrize(
    ("context", "consented"),
    [
        ({"consent": {"categoryPreferences": {"analytics": True}}}, True),
        ({"consent": {"categoryPreferences": {"Analytics": True}}}, True),
        ({"consent": {"categoryPreferences": {"analytics": "true"}}}, False),
        ({"consent": {"categoryPreferences": {"analytics": False}}}, False),
        ({"consent": {"categoryPreferences": {}}}, False),
        ({"consent": "yes"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_only_explicit_analytics_consent_counts(context, consented):
    assert analytics_consent(context) is consented


def test_sources_without_consent_requirement_keep_every_event():
    assert consent_allows({}, consent_required=False)
    assert not consent_allows({}, consent_required=True)


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("2002:cb00:7142:1:2:3:4:5", "2002:cb00:7100::"),  # 6to4 of 203.0.113.66 → 203.0.113.0
        ("2002:cb00:71ff::", "2002:cb00:7100::"),
    ],
)
def test_6to4_address_keeps_only_the_24_of_its_ipv4(address, truncated):
    assert truncate_ip(address) == truncated
