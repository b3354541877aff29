"""Privacy rules applied before an event reaches Kafka: IP truncation and consent. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from engagement.model.embedded_ipv4 import six_to_four_truncated

IPV4_PREFIX = 24
IPV6_PREFIX = 48


def truncate_ip(address: str | None) -> str | None:
    """Return the /24 (IPv4) or /48 (IPv6) network address of ``address``; None if not an IP.

    A 6to4 address keeps the /24 of the IPv4 address it carries.
    """
    if not address or not isinstance(address, str):
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        # A 6to4 address's /48 is its whole IPv4 address: keep only that address's /24.
        six_to_four = six_to_four_truncated(ip, IPV4_PREFIX)
        if six_to_four is not None:
            return str(six_to_four)
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def analytics_consent(context: Mapping[str, Any] | None) -> bool:
    """Return whether ``context.consent.categoryPreferences.analytics`` is exactly ``true``.

    The category key is matched case-insensitively ("analytics", "Analytics").
    """
    consent = (context or {}).get("consent")
    if not isinstance(consent, Mapping):
        return False
    preferences = consent.get("categoryPreferences")
    if not isinstance(preferences, Mapping):
        return False
    return any(
        isinstance(key, str) and key.lower() == "analytics" and value is True
        for key, value in preferences.items()
    )


def consent_allows(context: Mapping[str, Any] | None, *, consent_required: bool) -> bool:
    """Return whether an event may be kept: always when the source does not require consent."""
    return not consent_required or analytics_consent(context)
