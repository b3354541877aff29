"""The dashboard page is served with a Content-Security-Policy that runs only its own inline
script, connects only to its own origin and cannot be framed."""

from __future__ import annotations

import base64
import hashlib
import re


async def test_dashboard_has_a_csp_that_forbids_framing_and_foreign_scripts(client):
    response = await client.get("/dashboard")
    policy = {
        directive.split()[0]: directive.split()[1:]
        for directive in response.headers["content-security-policy"].split(";")
        if directive.strip()
    }
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    scripts = re.findall(r"<script>(.*?)</script>", response.text, flags=re.S)
    hashes = {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    }
    assert scripts and set(policy["script-src"]) == hashes
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
