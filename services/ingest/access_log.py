"""uvicorn's access log without personal data or secrets (a filter on the ``uvicorn.access`` logger).

Each line keeps the method, status and route, but the client address is truncated as it is for
Kafka (/24, /48; the port dropped), query values other than paging and filters are blanked (a key
sent in a URL is never written), and a candidate id in the path is named by its keyed hash
(``engagement.model.log_privacy``), so after an erasure no access log line names the erased id.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, unquote, urlencode

from engagement.model.log_privacy import hashed_id
from services.ingest.privacy import truncate_ip

ACCESS_LOGGER = "uvicorn.access"
KEPT_QUERY = frozenset({"tier", "limit", "days"})
BLANK = "-"
CANDIDATE_PATH = "/v1/candidates/"
UVICORN_ARGS = 5  # client address, method, path with query, HTTP version, status


class AccessLogPrivacy(logging.Filter):
    """Rewrite an access log record's client address and path before any handler sees it."""

    def __init__(self, *, hash_key: bytes) -> None:
        super().__init__()
        self.hash_key = hash_key

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drop it."""
        args = record.args
        if isinstance(args, tuple) and len(args) == UVICORN_ARGS:
            client, method, path, version, status = args
            record.args = (
                private_client(str(client)),
                method,
                private_path(str(path), hash_key=self.hash_key),
                version,
                status,
            )
        return True


def private_client(address: str) -> str:
    """Return the truncated network of a ``host:port`` client address, ``-`` if it has none."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return truncate_ip(host) or BLANK


def private_path(path: str, *, hash_key: bytes) -> str:
    """Return ``path`` with its candidate id hashed and its query values blanked but a few."""
    route, _, query = path.partition("?")
    if route.startswith(CANDIDATE_PATH) and len(route) > len(CANDIDATE_PATH):
        candidate = unquote(route.removeprefix(CANDIDATE_PATH))
        route = CANDIDATE_PATH + hashed_id(candidate, key=hash_key)
    if not query:
        return route
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(name, value if name in KEPT_QUERY else BLANK) for name, value in pairs]
    return f"{route}?{urlencode(kept, safe=BLANK)}"


def install(hash_key: bytes) -> None:
    """Put the filter on uvicorn's access logger (replacing one an earlier app put there)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, AccessLogPrivacy)]:
        logger.removeFilter(old)
    logger.addFilter(AccessLogPrivacy(hash_key=hash_key))
