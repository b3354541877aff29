"""Outgoing webhooks (Standard Webhooks v1): endpoint config, payloads, signatures, retries, SSRF policy.

Pure: no I/O. Time and randomness are passed in; DNS answers are passed in as addresses.
"""

from __future__ import annotations

import ipaddress
import tomllib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from standardwebhooks import Webhook

from engagement.model.embedded_ipv4 import embedded_ipv4
from engagement.model.records import Alert, JobAlert, format_time

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Outcome = Literal["delivered", "retry", "gone"]


class WebhookEndpoint(BaseModel):
    """One receiver: where to POST, which alerts it wants, and the secret it verifies with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    url: str
    secret: SecretStr
    previous_secrets: tuple[SecretStr, ...] = ()
    event_types: tuple[str, ...] = ()  # empty = every alert type
    tenants: tuple[str, ...] = ()  # empty = every tenant
    job_prefixes: tuple[str, ...] = ()  # job alerts of jobs whose id starts so; empty = all
    enabled: bool = True
    allow_private: bool = False

    @field_validator("secret", "previous_secrets")
    @classmethod
    def _valid_secret(cls, value: Any) -> Any:
        for secret in value if isinstance(value, tuple) else (value,):
            raw = secret.get_secret_value()
            if not raw.startswith("whsec_"):
                raise ValueError("webhook secrets start with whsec_")
            Webhook(raw)  # base64 and non-empty, as receivers will decode it
        return value

    def wants(self, alert: Alert) -> bool:
        """Return whether this endpoint receives ``alert`` (enabled, type and tenant filters; a
        job alert also by its job id's prefix)."""
        return (
            self.enabled
            and (not self.event_types or alert.type in self.event_types)
            and (not self.tenants or alert.tenantId in self.tenants)
            and self._wants_job(alert.jobId if isinstance(alert, JobAlert) else None)
        )

    def _wants_job(self, job_id: str | None) -> bool:
        """Candidate alerts pass; a job alert when its job id starts with one of
        ``job_prefixes`` (or there are none)."""
        return job_id is None or not self.job_prefixes or job_id.startswith(self.job_prefixes)


class WebhookConfig(BaseModel):
    """The webhooks file: endpoints plus the global egress policy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    require_https: bool = True
    allow_private_networks: tuple[str, ...] = ()  # CIDRs exempt from the SSRF guard
    endpoints: tuple[WebhookEndpoint, ...] = ()

    @field_validator("allow_private_networks")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)
        return value

    @field_validator("endpoints")
    @classmethod
    def _unique_ids(cls, value: tuple[WebhookEndpoint, ...]) -> tuple[WebhookEndpoint, ...]:
        ids = [e.id for e in value]
        if len(ids) != len(set(ids)):
            raise ValueError("endpoint ids must be unique")
        return value

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        """Return the endpoint with this id, if configured."""
        return next((e for e in self.endpoints if e.id == endpoint_id), None)

    def targets(self, alert: Alert) -> tuple[WebhookEndpoint, ...]:
        """Return the endpoints that receive ``alert``."""
        return tuple(e for e in self.endpoints if e.wants(alert))


def load_webhooks(path: str | Path) -> WebhookConfig:
    """Parse and validate a webhooks TOML file."""
    with open(path, "rb") as handle:
        return WebhookConfig.model_validate(tomllib.load(handle))


# --- payload and signature --------------------------------------------------------------------


def alert_data(alert: Alert) -> dict[str, Any]:
    """Return the alert as JSON-ready camelCase fields (times RFC 3339 UTC, milliseconds, ``Z``)."""
    data = alert.model_dump(mode="json")
    data["time"] = format_time(alert.time)
    return data


def payload(alert: Alert) -> bytes:
    """Return the request body ``{"type", "timestamp", "data"}``; the bytes that get signed."""
    data = alert_data(alert)
    return orjson.dumps({"type": alert.type, "timestamp": data["time"], "data": data})


def signature_header(
    endpoint: WebhookEndpoint, *, msg_id: str, sent_at: datetime, body: bytes
) -> str:
    """Return ``webhook-signature``: one ``v1,…`` per secret (current first, then rotating-out)."""
    secrets = (endpoint.secret, *endpoint.previous_secrets)
    text = body.decode()
    return " ".join(
        Webhook(s.get_secret_value()).sign(msg_id, sent_at.astimezone(UTC), text) for s in secrets
    )


def request_headers(
    endpoint: WebhookEndpoint, *, msg_id: str, sent_at: datetime, body: bytes
) -> dict[str, str]:
    """Return the Standard Webhooks headers of one attempt (timestamp = the attempt's time)."""
    return {
        "content-type": "application/json",
        "user-agent": "candidate-engagement-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(endpoint, msg_id=msg_id, sent_at=sent_at, body=body),
    }


# --- retries ----------------------------------------------------------------------------------


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter: attempt n waits base·factor^(n-1), capped, ±jitter."""

    model_config = ConfigDict(frozen=True)

    max_attempts: int = Field(10, ge=1)
    base_seconds: float = Field(5.0, ge=0)
    factor: float = Field(4.0, ge=1)
    max_seconds: float = Field(86_400.0, ge=0)
    jitter: float = Field(0.2, ge=0, le=1)


def retry_delay(attempt: int, random01: float, policy: RetryPolicy) -> float:
    """Return the wait after failed attempt ``attempt`` (1-based); ``random01`` in [0, 1)."""
    nominal = min(policy.max_seconds, policy.base_seconds * policy.factor ** (attempt - 1))
    return max(0.0, nominal * (1.0 + policy.jitter * (2.0 * random01 - 1.0)))


def classify(status: int | None) -> Outcome:
    """Return what a response means: 2xx delivered, 410 gone, anything else (or none) retry."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    return "retry"


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(
    attempt: int, random01: float, retry_after: float | None, policy: RetryPolicy
) -> float | None:
    """Return the wait before the next attempt, or None when ``attempt`` was the last.

    ``Retry-After`` is honoured (never waiting less than it asks), within ``max_seconds``.
    """
    if attempt >= policy.max_attempts:
        return None
    delay = retry_delay(attempt, random01, policy)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_seconds))
    return delay


# --- SSRF guard ---------------------------------------------------------------------------------


def forbidden_address(address: IPAddress) -> bool:
    """Return whether an address is private, loopback, link-local or otherwise not public; an
    IPv6 address carrying IPv4 addresses (mapped, NAT64, 6to4, ...) is judged by what it carries."""
    carried = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else ()
    return any(_not_public(ip) for ip in carried) if carried else _not_public(address)


def _not_public(address: IPAddress) -> bool:
    return not address.is_global or address.is_multicast


def destination_refusal(
    url: str, addresses: list[str], *, endpoint: WebhookEndpoint, config: WebhookConfig
) -> str | None:
    """Return why a delivery to ``url`` (resolved to ``addresses``) is refused, or None if allowed.

    Every resolved address must pass: public, or in ``allow_private_networks``, or the endpoint
    says ``allow_private``.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return f"unsupported url {url!r}"
    if config.require_https and parts.scheme != "https":
        return "https required"
    if not addresses:
        return "host does not resolve"
    networks = [ipaddress.ip_network(c, strict=False) for c in config.allow_private_networks]
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        allowed = endpoint.allow_private or any(address in n for n in networks)
        if forbidden_address(address) and not allowed:
            return f"address {address} is not public and not allowlisted"
    return None
