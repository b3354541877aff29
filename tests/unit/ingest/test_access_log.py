"""Access log lines keep no personal data or secrets: client addresses truncated as for Kafka,
query values other than paging and filters blanked, candidate ids named by a keyed hash."""

from __future__ import annotations

import logging

import pytest

from engagement.model.log_privacy import hashed_id
from services.ingest.access_log import AccessLogPrivacy

KEY = b"k" * 32
FORMAT = '%s - "%s %s HTTP/%s" %d'  # uvicorn's access log record


def _line(client: str, method: str, path: str) -> str:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        FORMAT,
        (client, method, path, "1.1", 200),
        None,
    )
    assert AccessLogPrivacy(hash_key=KEY).filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    ("client", "shown"),
    [
        ("203.0.113.77:51234", "203.0.113.0"),
        ("2001:db8:abcd:12:1:2:3:4:443", "2001:db8:abcd::"),
        ("", "-"),
    ],
)
def test_client_address_is_truncated_and_its_port_dropped(client, shown):
    line = _line(client, "GET", "/healthz")
    assert line.startswith(f"{shown} - ")
    assert ":51234" not in line and ":443" not in line


def test_query_values_other_than_paging_and_filters_are_blanked():
    line = _line("203.0.113.7:1", "GET", "/dashboard?key=rk_secret&tier=hot&limit=5&writeKey=wk")
    assert "rk_secret" not in line and "wk" not in line.split("?", 1)[1].replace("writeKey", "")
    assert "tier=hot" in line and "limit=5" in line


def test_a_candidate_id_in_the_path_is_named_by_its_keyed_hash():
    line = _line("203.0.113.7:1", "DELETE", "/v1/candidates/bob%40mail.example")
    assert "bob" not in line
    assert f"/v1/candidates/{hashed_id('bob@mail.example', key=KEY)}" in line


def test_the_keyed_hash_is_stable_per_key_and_differs_between_keys():
    assert hashed_id("bob", key=KEY) == hashed_id("bob", key=KEY)
    assert hashed_id("bob", key=KEY) != hashed_id("bob", key=b"other")
    assert hashed_id("bob", key=KEY) != hashed_id("bob2", key=KEY)
