"""The web helper's test stack: the ingest app plus the hooks, tracker and dashboard routers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from engagement.tools.localstack import free_port
from services.ingest import dashboard, hooks, tracker
from services.ingest.app import create_app
from services.ingest.platform_hooks import HookSource
from services.ingest.settings import IngestSettings
from tests.support.server import serve

PAGES = Path(__file__).parent
WRITE_KEY = "wk_site"
CONSENT_KEY = "wk_consent"
READ_KEY = "rk_web"


def sources_toml(tenant: str, origin: str) -> str:
    """A sources file: a browser source, a consent-requiring one, a read key."""
    return f"""
[[sources]]
source_id = "site"
tenant_id = "{tenant}"
channel = "web"
write_key = "{WRITE_KEY}"
allowed_origins = ["{origin}"]

[[sources]]
source_id = "consent-site"
tenant_id = "{tenant}"
channel = "web"
write_key = "{CONSENT_KEY}"
allowed_origins = ["{origin}"]
consent_required = true

[[read_keys]]
key = "{READ_KEY}"
tenant_id = "{tenant}"
"""


def settings_for(
    *, kafka: str, redis: str, topic_prefix: str, redis_prefix: str, sources: Path
) -> IngestSettings:
    """IngestSettings for a test: small topics and short timeouts."""
    return IngestSettings(
        kafka_bootstrap_servers=kafka,
        kafka_topic_prefix=topic_prefix,
        kafka_topic_partitions=3,
        redis_url=redis,
        redis_key_prefix=redis_prefix,
        sources_file=sources,
        ingest_produce_timeout_seconds=5.0,
        ingest_startup_retry_seconds=0.5,
        ingest_shutdown_timeout_seconds=3.0,
    )


def web_app(settings: IngestSettings, *, hook_sources: list[HookSource] = ()) -> FastAPI:  # type: ignore[assignment]
    """The ingest app with the three web routers included (what the lead wires in app.py)."""
    app = create_app(settings)
    app.include_router(hooks.router)
    app.include_router(tracker.router)
    app.include_router(dashboard.router)
    if hook_sources:
        app.state.hook_sources = {h.source_id: h for h in hook_sources}
    return app


def pages_app(ingest_url: str) -> Starlette:
    """A careers site on its own origin: the HTML pages of this folder with the tracker snippet.

    ``?c=true`` renders them for a site that asks for analytics consent (requireConsent + the
    consent-requiring source's key).
    """

    async def page(request: Request) -> Response:
        consent = request.query_params.get("c") == "true"
        name = request.path_params["name"]
        path = PAGES / f"{name}.html"
        if not path.is_file() or name.startswith("_"):
            return PlainTextResponse("not found", status_code=404)
        values = {
            "{{SNIPPET}}": (PAGES / "_snippet.html").read_text(),
            "{{INGEST}}": ingest_url,
            "{{KEY}}": CONSENT_KEY if consent else WRITE_KEY,
            "{{CONSENT}}": "true" if consent else "false",
            "{{QS}}": "?c=true" if consent else "",
        }
        html = path.read_text()
        for placeholder, value in values.items():
            html = html.replace(placeholder, value)
        return HTMLResponse(html)

    async def pdf(_request: Request) -> Response:
        return Response(b"%PDF-1.4\n%%EOF\n", media_type="application/pdf")

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/files/benefits.pdf", pdf),
            Route("/{name}.html", page),
        ]
    )


class Arrivals:
    """ASGI wrapper noting each POST's path and body as the server got it.

    What the browser really sent, whichever way it went: Playwright's request events miss
    some that leave while a page unloads (a beacon, a keepalive fetch).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.posts: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def tap() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):  # noted before the app produces to Kafka
                    self.posts.append((scope["path"], b"".join(chunks)))
            return message

        await self.app(scope, tap, send)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class WebStack:
    """A running ingest (with the web routers) and a careers site on another origin."""

    tenant: str
    settings: IngestSettings
    ingest_url: str
    site_url: str
    ingest_port: int
    arrivals: Arrivals
    hook_sources: list[HookSource] = field(default_factory=list)

    def app(self) -> FastAPI:
        """A fresh app for this stack (to restart the ingest on the same port)."""
        return web_app(self.settings, hook_sources=self.hook_sources)


@contextlib.contextmanager
def web_stack(
    *, tenant: str, tmp_path: Path, kafka: str, redis: str, topic_prefix: str, redis_prefix: str
) -> Iterator[WebStack]:
    """Start the ingest and the site; yield both URLs."""
    ingest_port, site_port = free_port(), free_port()
    site_url = f"http://127.0.0.1:{site_port}"
    sources = tmp_path / "sources.toml"
    sources.write_text(sources_toml(tenant, site_url))
    settings = settings_for(
        kafka=kafka,
        redis=redis,
        topic_prefix=topic_prefix,
        redis_prefix=redis_prefix,
        sources=sources,
    )
    ingest_url = f"http://127.0.0.1:{ingest_port}"
    arrivals = Arrivals(web_app(settings))
    with (
        serve(arrivals, port=ingest_port, ready_path="/readyz") as ingest,
        serve(pages_app(ingest_url), port=site_port) as site,
    ):
        yield WebStack(tenant, settings, ingest, site, ingest_port, arrivals)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
