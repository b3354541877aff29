"""How a log line names a candidate without naming it: a keyed hash. Pure.

No log line may hold an id that can be erased (GDPR): once the candidate is erased, its id must
not be readable from the logs. Operators still need to match the lines of one candidate (its
DELETE in the access log, the scorer's erasure line): they name it by HMAC-SHA256 under
``LOG_HASH_KEY``, which nobody without the key can link back to the id.
"""

from __future__ import annotations

import hashlib
import hmac

HASH_PREFIX = "h:"
HASH_HEX_DIGITS = 16


def hashed_id(value: str, *, key: bytes) -> str:
    """Return ``h:`` + 16 hex digits of HMAC-SHA256(key, value): the same for one key and id."""
    digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest[:HASH_HEX_DIGITS]
