"""The SSRF check sees through IPv6 addresses that carry an IPv4 address (mapped, translated,
compatible, NAT64, 6to4): the IPv4 address inside is judged by the same policy."""

from __future__ import annotations

import pytest

from engagement.model.webhooks import WebhookConfig, WebhookEndpoint, destination_refusal

ENDPOINT = WebhookEndpoint(id="ats", url="https://h.example/x", secret="whsec_" + "a" * 32)


def _refusal(address: str) -> str | None:
    return destination_refusal(
        "https://h.example/x", [address], endpoint=ENDPOINT, config=WebhookConfig()
    )


@pytest.mark.parametrize(
    "address",
    [
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254 (cloud metadata)
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # NAT64 local-use prefix, /96 layout
        "64:ff9b:1:a9fe:a9:fe00::",  # NAT64 local-use prefix, /48 layout (RFC 6052)
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::ffff:0:a9fe:a9fe",  # IPv4-translated (SIIT)
        "::ffff:0:c0a8:1",  # IPv4-translated 192.168.0.1
    ],
)
def test_ipv6_carrying_a_private_ipv4_is_refused(address):
    assert _refusal(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
        "2606:4700::6810:85e5",  # plain global IPv6
    ],
)
def test_ipv6_carrying_a_public_ipv4_passes(address):
    assert _refusal(address) is None
