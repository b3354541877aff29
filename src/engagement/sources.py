"""Sources and API keys (config/sources.toml): which key belongs to which tenant and source.

Keys are compared in constant time against every configured key, so neither the answer nor its
timing tells which key (or how much of one) matched.
"""

from __future__ import annotations

import hmac
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

T = TypeVar("T")


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Config):
    """One event source: a write key bound to a tenant, a channel and browser origins.

    A source that receives ad/social platform webhooks also names its provider and secrets.
    """

    source_id: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    channel: str = Field("web", min_length=1)
    write_key: str = Field(min_length=1, repr=False)
    allowed_origins: frozenset[str] = frozenset()
    consent_required: bool = False
    hook_provider: Literal["meta", "linkedin", "google", "generic"] | None = None
    hook_secret: SecretStr | None = Field(
        None, description="Meta app secret, LinkedIn client secret, Google google_key or whsec_ key"
    )
    hook_verify_token: SecretStr | None = Field(None, description="Meta hub.verify_token")

    @property
    def ce_source(self) -> str:
        """The CloudEvents ``source`` of this source's records."""
        return f"/tenants/{self.tenant_id}/sources/{self.source_id}"


class TenantKey(_Config):
    """A secret bearer key (read or admin) scoped to one tenant."""

    key: str = Field(min_length=1, repr=False)
    tenant_id: str = Field(min_length=1)


class KeyRegistry(_Config):
    """Every source and key of a deployment, looked up in constant time."""

    sources: tuple[Source, ...] = ()
    read_keys: tuple[TenantKey, ...] = ()
    admin_keys: tuple[TenantKey, ...] = ()

    def source_for_write_key(self, key: str | None) -> Source | None:
        """Return the source of a write key, or None; compares against every key."""
        return _match(key, [(s.write_key, s) for s in self.sources])

    def tenant_for_read_key(self, key: str | None) -> str | None:
        """Return the tenant of a read key (admin keys also read), or None."""
        pairs = [(k.key, k.tenant_id) for k in (*self.read_keys, *self.admin_keys)]
        return _match(key, pairs)

    def tenant_for_admin_key(self, key: str | None) -> str | None:
        """Return the tenant of an admin key, or None."""
        return _match(key, [(k.key, k.tenant_id) for k in self.admin_keys])

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Every origin some source allows (used to answer CORS preflights)."""
        return frozenset().union(*(s.allowed_origins for s in self.sources))


def _match(candidate: str | None, pairs: list[tuple[str, T]]) -> T | None:
    given = (candidate or "").encode()
    found: T | None = None
    for key, value in pairs:
        if hmac.compare_digest(given, key.encode()) and candidate:
            found = value
    return found


def parse_sources(data: dict[str, Any]) -> KeyRegistry:
    """Return the registry described by a parsed sources TOML document (validated)."""
    return KeyRegistry.model_validate(data)


def load_sources(path: str | Path) -> KeyRegistry:
    """Read and validate a sources TOML file."""
    with open(path, "rb") as handle:
        return parse_sources(tomllib.load(handle))
