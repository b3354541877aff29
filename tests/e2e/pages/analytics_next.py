"""Segment's own analytics.js (@segment/analytics-next from npm) on a careers site of its own origin.

The package is installed once with the machine's npm into ``tests/e2e/.node/`` (git-ignored) and
its UMD build (``dist/umd/index.js``, global ``AnalyticsNext``) is served by the site.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

PACKAGE, VERSION = "@segment/analytics-next", "1.84.3"
NODE_DIR = Path(__file__).resolve().parents[1] / ".node"
PACKAGE_DIR = NODE_DIR / "node_modules" / PACKAGE
BUNDLE = PACKAGE_DIR / "dist" / "umd" / "index.js"

PAGE = """<!doctype html>
<html><head><title>Careers at Acme</title>
<script src="/vendor/analytics-next.js"></script>
<script>
  window.analytics = AnalyticsNext.AnalyticsBrowser.load({{SETTINGS}}, {{OPTIONS}});
</script>
</head><body><h1>Careers</h1></body></html>
"""


def installed_version() -> str | None:
    """Return the version of the package in the cache dir, or None when it is not there."""
    manifest = PACKAGE_DIR / "package.json"
    if not (manifest.is_file() and BUNDLE.is_file()):
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def ensure_bundle() -> Path:
    """Return the pinned analytics-next UMD bundle, installing it with npm when missing."""
    if installed_version() == VERSION:
        return BUNDLE
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js and npm (Debian: nodejs npm)")
    command = [npm, "install", "--prefix", str(NODE_DIR), "--no-save", "--no-package-lock"]
    command += ["--no-audit", "--no-fund", f"{PACKAGE}@{VERSION}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or installed_version() != VERSION:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (can npm reach its registry?):\n{done.stderr[-2000:]}"
        )
    return BUNDLE


def load_arguments(
    setup: str, *, ingest_url: str, write_key: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return AnalyticsBrowser.load's (settings, options) for one documented setup.

    ``standard``: only ``cdnURL`` = the ingest (settings fetched from it, one request per event);
    ``batching``: the same plus the batching delivery strategy (``/v1/b``);
    ``inline``: no settings fetch, ``cdnSettings`` given in the page.
    """
    if setup == "inline":
        url = urlsplit(ingest_url)
        segment = {"apiKey": write_key, "apiHost": f"{url.netloc}/v1", "protocol": url.scheme}
        inline = {"integrations": {"Segment.io": segment}, "metrics": {"sampleRate": 0}}
        return {"writeKey": write_key, "cdnSettings": inline}, {}
    settings = {"writeKey": write_key, "cdnURL": ingest_url}
    if setup == "batching":
        strategy = {"strategy": "batching", "config": {"size": 3, "timeout": 500}}
        return settings, {"integrations": {"Segment.io": {"deliveryStrategy": strategy}}}
    return settings, {}


def site_app(*, bundle: Path, ingest_url: str, write_key: str) -> Starlette:
    """A site whose ``/careers.html?setup=standard|batching|inline`` loads analytics-next."""

    async def careers(request: Request) -> Response:
        setup = request.query_params.get("setup", "standard")
        settings, options = load_arguments(setup, ingest_url=ingest_url, write_key=write_key)
        html = PAGE.replace("{{SETTINGS}}", json.dumps(settings))
        return HTMLResponse(html.replace("{{OPTIONS}}", json.dumps(options)))

    async def vendor(_request: Request) -> Response:
        return FileResponse(bundle, media_type="text/javascript")

    return Starlette(
        routes=[Route("/careers.html", careers), Route("/vendor/analytics-next.js", vendor)]
    )
