"""The running service's access log: no full client address, no key sent in a URL, and no
erased candidate's id (a keyed hash instead)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from engagement.model.log_privacy import hashed_id
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import ADMIN_KEY
from tests.support.server import serve

HASH_KEY = "log-hash-key-of-the-test"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged(settings: IngestSettings) -> Iterator[tuple[str, list[str]]]:
    configured = settings.model_copy(update={"log_hash_key": SecretStr(HASH_KEY)})
    access = logging.getLogger("uvicorn.access")
    lines = _Lines()
    with serve(create_app(configured), ready_path="/readyz") as url:
        level = access.level
        access.setLevel(logging.INFO)  # serve() runs uvicorn at warning level
        access.addHandler(lines)
        try:
            yield url, lines.lines
        finally:
            access.removeHandler(lines)
            access.setLevel(level)


async def test_access_log_names_no_key_full_address_or_erased_id(logged):
    url, lines = logged
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await http.get("/dashboard?key=rk_in_the_url")
        erased = await http.delete(
            "/v1/candidates/erased-bob", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
    assert erased.status_code == 204, erased.text
    text = "\n".join(lines)
    assert "/dashboard?key=-" in text and "rk_in_the_url" not in text
    assert "erased-bob" not in text
    assert hashed_id("erased-bob", key=HASH_KEY.encode()) in text
    assert "127.0.0.1" not in text and "127.0.0.0 - " in text
