"""Inbound ad and social platform webhooks: handshakes and signatures. Pure.

Every verifier works on the raw request bytes and compares in constant time. What a handshake
answers can never verify a body: LinkedIn's challenge is answered only for a UUID, a shape no
lead body has (docs/hooks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

GENERIC_TOLERANCE_SECONDS = 300
GENERIC_TIMESTAMP = re.compile(r"[0-9]{1,12}")
LINKEDIN_PREFIX = "hmacsha256="
# LinkedIn's challengeCode is a type-4 UUID ("Webhook validation"); a handshake answers nothing
# else, so its HMAC can never be the signature of a body (a body of this shape is refused too).
LINKEDIN_CHALLENGE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
LINKEDIN_CHALLENGE_BYTES = re.compile(LINKEDIN_CHALLENGE.pattern.encode())


def _same(given: str | bytes | None, expected: str | bytes) -> bool:
    if given is None:
        return False
    left = given.encode() if isinstance(given, str) else given
    right = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(left, right)


def _hex_hmac(key: str | bytes, message: bytes) -> str:
    raw_key = key.encode() if isinstance(key, str) else key
    return hmac.new(raw_key, message, hashlib.sha256).hexdigest()


# -- handshakes -----------------------------------------------------------------------------------


def meta_challenge(params: Mapping[str, str], *, verify_token: str | None) -> str | None:
    """Return ``hub.challenge`` when ``hub.mode=subscribe`` and the verify token matches, else None."""
    if verify_token is None or params.get("hub.mode") != "subscribe":
        return None
    if not _same(params.get("hub.verify_token"), verify_token):
        return None
    return params.get("hub.challenge")


def linkedin_challenge(challenge_code: str, *, client_secret: str) -> dict[str, str] | None:
    """Return LinkedIn's validation answer (hex HMAC-SHA256 of the challengeCode keyed by the
    secret); None unless the code is a UUID, the only shape LinkedIn sends."""
    if not LINKEDIN_CHALLENGE.fullmatch(challenge_code):
        return None
    response = _hex_hmac(client_secret, challenge_code.encode())
    return {"challengeCode": challenge_code, "challengeResponse": response}


# -- signatures -----------------------------------------------------------------------------------


def meta_signature_valid(body: bytes, header: str | None, *, app_secret: str) -> bool:
    """Return whether ``X-Hub-Signature-256`` is ``sha256=`` + hex HMAC-SHA256(app secret, body)."""
    return _same(header, "sha256=" + _hex_hmac(app_secret, body))


def linkedin_signature_valid(body: bytes, header: str | None, *, client_secret: str) -> bool:
    """Return whether ``X-LI-Signature`` is the hex HMAC of ``"hmacsha256=" + body``.

    The header may carry the ``hmacsha256=`` prefix; the HMAC of the bare body (the literal reading
    of LinkedIn's prose) is accepted too. A body shaped as a challenge code never verifies: the
    handshake would have signed it.
    """
    if LINKEDIN_CHALLENGE_BYTES.fullmatch(body.strip()):
        return False
    given = (header or "").removeprefix(LINKEDIN_PREFIX)
    prefixed = _hex_hmac(client_secret, LINKEDIN_PREFIX.encode() + body)
    bare = _hex_hmac(client_secret, body)
    return bool(header) and (_same(given, prefixed) | _same(given, bare))


def google_key_valid(payload: Mapping[str, Any], *, google_key: str) -> bool:
    """Return whether the body's ``google_key`` equals the key configured on the lead form."""
    given = payload.get("google_key")
    return isinstance(given, str) and _same(given, google_key)


def generic_signature_valid(
    body: bytes, headers: Mapping[str, str], *, secret: str, now: datetime
) -> bool:
    """Return whether a Standard Webhooks ``v1`` signature over ``id.timestamp.body`` matches.

    The secret is ``whsec_`` + base64 (or any other string, used as UTF-8 bytes); the timestamp
    must be within five minutes of ``now``.
    """
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not stamp or not GENERIC_TIMESTAMP.fullmatch(stamp):
        return False
    if abs(now.timestamp() - int(stamp)) > GENERIC_TOLERANCE_SECONDS:
        return False
    key = _generic_key(secret)
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    offered = headers.get("webhook-signature", "").split()
    return any(_same(candidate, expected) for candidate in offered)


def _generic_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            pass  # not base64 after all: the whole string is the key
    return secret.encode()
