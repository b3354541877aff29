"""Run an ASGI app as a real uvicorn server on a free port, in a background thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from engagement.tools.localstack import free_port


@contextlib.contextmanager
def serve(
    app: Any,  # an ASGI application
    *,
    port: int | None = None,
    ready_path: str = "/healthz",
    timeout: float = 30.0,
    host: str = "127.0.0.1",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[str]:
    """Serve ``app`` on ``host`` (https with ``tls``: key and certificate files) and yield its
    base URL once ``ready_path`` answers."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        ssl_keyfile=str(tls[0]) if tls else None,
        ssl_certfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base = f"{'https' if tls else 'http'}://{host}:{port}"
    try:
        _wait_ready(base + ready_path, thread, timeout)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _wait_ready(url: str, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError(f"server thread died before {url} answered")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0, verify=False).status_code < 500:  # alive is enough
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")
