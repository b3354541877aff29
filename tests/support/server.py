"""Run an ASGI app as a real uvicorn server on a free port, in a background thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn

from engagement.localstack import free_port


@contextlib.contextmanager
def serve(
    app,
    *,
    port: int | None = None,
    ready_path: str = "/healthz",
    timeout: float = 30.0,
    host: str = "127.0.0.1",
) -> Iterator[str]:
    """Serve ``app`` on ``host`` and yield its base URL once ``ready_path`` answers."""
    port = port or free_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    base = f"http://{host}:{port}"
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
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")
