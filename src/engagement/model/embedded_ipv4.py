"""IPv4 addresses carried inside IPv6 addresses: what a connection to the IPv6 address reaches. Pure.

A host that resolves to ``::ffff:169.254.169.254``, ``64:ff9b::a9fe:a9fe`` (NAT64) or
``2002:a9fe:a9fe::`` (6to4) reaches the IPv4 address inside through a translator or relay, so a
policy over addresses (the webhook SSRF check, IP truncation) must judge that IPv4 address.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address, IPv6Network

IPV4_MAPPED = IPv6Network("::ffff:0:0/96")
IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")  # SIIT, RFC 2765
IPV4_COMPATIBLE = IPv6Network("::/96")  # deprecated, RFC 4291 §2.5.5.1
NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")  # RFC 6052
NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")  # RFC 8215: any RFC 6052 layout within it
SIX_TO_FOUR = IPv6Network("2002::/16")  # RFC 3056
NAT64_LOCAL_PREFIX_LENGTHS = (48, 56, 64)
LOW_32_BITS = 0xFFFFFFFF


def embedded_ipv4(address: IPv6Address) -> tuple[IPv4Address, ...]:
    """Return the IPv4 addresses ``address`` may lead to (empty when it carries none).

    NAT64 addresses under the local-use prefix can hold the IPv4 address at any of RFC 6052's
    positions, so every reading is returned; a policy must accept all of them.
    """
    low = IPv4Address(int(address) & LOW_32_BITS)
    if address in IPV4_MAPPED or address in IPV4_TRANSLATED or address in NAT64_WELL_KNOWN:
        return (low,)
    if address in IPV4_COMPATIBLE:
        return (low,) if int(address) > 1 else ()  # :: and ::1 are not IPv4 addresses
    if address in SIX_TO_FOUR:
        return (IPv4Address((int(address) >> 80) & LOW_32_BITS),)
    if address in NAT64_LOCAL_USE:
        return (low, *(_rfc6052_ipv4(address, length) for length in NAT64_LOCAL_PREFIX_LENGTHS))
    return ()


def _rfc6052_ipv4(address: IPv6Address, prefix_length: int) -> IPv4Address:
    """The IPv4 address after a NAT64 prefix of ``prefix_length`` bits (≤ 64); bits 64 to 71 (the
    "u" octet) are skipped."""
    value = int(address)
    without_u = ((value >> 64) << 56) | (value & ((1 << 56) - 1))
    return IPv4Address((without_u >> (120 - prefix_length - 32)) & LOW_32_BITS)


def six_to_four_truncated(address: IPv6Address, ipv4_prefix: int) -> IPv6Address | None:
    """Return a 6to4 address cut after its IPv4 address's first ``ipv4_prefix`` bits, else None."""
    if address not in SIX_TO_FOUR:
        return None
    kept_bits = 16 + ipv4_prefix
    network = ipaddress.ip_network(f"{address}/{kept_bits}", strict=False)
    return IPv6Address(network.network_address)
