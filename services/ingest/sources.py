"""Sources and API keys (config/sources.toml): which key belongs to which tenant and source.

Keys are compared in constant time against every configured key, so neither the answer nor its
timing tells which key (or how much of one) matched.

A tenant id is ``[A-Za-z0-9_-]{1,64}``: it holds no ``:`` or brace, so the Redis keys of
``(tenant, candidate)`` (``{tenant:candidate}``, engagement.store.redis_keys) never alias another
pair's. ``load_sources`` refuses, naming the file's lines, a key used twice (across tenants or
roles: the key alone decides tenant and role) and a key still holding a placeholder
(``ak_change_me``, ``REPLACE_ME``, ...), so a template is never deployed with its well-known keys.
"""

from __future__ import annotations

import hmac
import re
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

T = TypeVar("T")
TENANT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# "change_me", "REPLACE-ME", "changeme", "placeholder": no generated key holds one by chance
PLACEHOLDER = re.compile(r"(change|replace)[_-]?me|placeholder", re.IGNORECASE)


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Config):
    """One event source: a write key bound to a tenant, a channel and browser origins.

    A source that receives ad/social platform webhooks also names its provider and secrets.
    """

    source_id: str = Field(min_length=1)
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
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
    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)


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


class SourcesFileError(ValueError):
    """A sources file that must not be served: each problem names its file and line."""


def load_sources(path: str | Path) -> KeyRegistry:
    """Read and validate a sources TOML file; SourcesFileError for a key used twice or a
    placeholder key (never printing a key)."""
    text = Path(path).read_text(encoding="utf-8")
    registry = parse_sources(tomllib.loads(text))
    problems = [
        f"{path}:{_lines_of(text, secret)[0]}: {problem}"
        for secret, problem in key_problems(registry, lines=lambda s: _lines_of(text, s))
    ]
    if problems:
        raise SourcesFileError("refusing the sources file:\n" + "\n".join(problems))
    return registry


def key_problems(
    registry: KeyRegistry, *, lines: Callable[[str], list[int]] = lambda _: []
) -> list[tuple[str, str]]:
    """(secret, problem) for each placeholder secret and each key used more than once."""
    secrets = list(_secrets(registry))
    problems = [
        (secret, f"{where} is a placeholder; replace it with a generated key")
        for where, secret in secrets
        if PLACEHOLDER.search(secret)
    ]
    uses: dict[str, list[str]] = defaultdict(list)
    for where, secret in secrets:
        if not where.endswith(("hook_secret", "hook_verify_token")):
            uses[secret].append(where)
    for secret, places in uses.items():
        if len(places) > 1:
            at = ", ".join(str(n) for n in lines(secret))
            problems.append((secret, f"{' and '.join(places)} are the same key (lines {at})"))
    return problems


def _secrets(registry: KeyRegistry) -> Iterator[tuple[str, str]]:
    for i, source in enumerate(registry.sources):
        yield f"sources[{i}].write_key", source.write_key
        for name in ("hook_secret", "hook_verify_token"):
            secret = getattr(source, name)
            if secret is not None:
                yield f"sources[{i}].{name}", secret.get_secret_value()
    for role in ("read_keys", "admin_keys"):
        for i, key in enumerate(getattr(registry, role)):
            yield f"{role}[{i}].key", key.key


def _lines_of(text: str, value: str) -> list[int]:
    """The numbers of the lines holding ``value`` as a TOML string (0 when none does)."""
    quoted = (f'"{value}"', f"'{value}'")
    found = [n for n, line in enumerate(text.splitlines(), 1) if any(q in line for q in quoted)]
    return found or [0]
