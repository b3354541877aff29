"""Headers that confine an HTML page of this service (the dashboard) to itself.

The Content-Security-Policy runs only the page's own inline scripts, pinned by their SHA-256, so
text an attacker gets into the page (a candidate id, an event name) can never run as script; the
page fetches only its own origin and no other site can frame it (clickjacking).
"""

from __future__ import annotations

import base64
import hashlib
import re

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def script_hashes(html: str) -> list[str]:
    """Return the CSP source of each inline ``<script>`` of ``html`` (``'sha256-…'``)."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in INLINE_SCRIPT.findall(html)
    ]


def page_headers(html: str) -> dict[str, str]:
    """Return the headers ``html`` is served with: its CSP, no framing, no caching, no referrer."""
    policy = [
        "default-src 'none'",
        "script-src " + (" ".join(script_hashes(html)) or "'none'"),
        "style-src 'unsafe-inline'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
    return {
        "Content-Security-Policy": "; ".join(policy),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
