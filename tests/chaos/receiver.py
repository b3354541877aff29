"""The chaos suite's ATS: a webhook receiver in a process of its own.

``python -m tests.chaos.receiver --port P`` verifies every POST's Standard Webhooks signature
(secret in ``CHAOS_WEBHOOK_SECRET``) and appends one JSON line per request to the file named by
``CHAOS_DELIVERIES``: ``{"id", "verified", "status", "at", "type", "candidate", "tier"}``. Like a
flaky endpoint, it answers 500 to the first attempt of one alert id in ten (chosen by the id's
hash, so the same ids fail in every run); every other verified delivery gets 200.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

from standardwebhooks import Webhook, WebhookVerificationError


class Ledger:
    """Decides each answer and writes each delivery to the file, one JSON line, flushed."""

    def __init__(self, out: BinaryIO, secret: str) -> None:
        self.out = out
        self.verifier = Webhook(secret)
        self.failed_once: set[str] = set()
        self.lock = threading.Lock()

    def accept(self, headers: dict[str, str], body: bytes) -> int:
        """Return the status to answer this delivery with, after writing it down."""
        webhook_id = headers.get("webhook-id", "")
        try:
            self.verifier.verify(body, headers)
        except WebhookVerificationError:
            self.write({"id": webhook_id, "verified": False, "status": 401})
            return 401
        data: dict[str, Any] = json.loads(body).get("data", {})
        with self.lock:
            fail = flaky(webhook_id) and webhook_id not in self.failed_once
            if fail:
                self.failed_once.add(webhook_id)
        status = 500 if fail else 200
        self.write(
            {
                "id": webhook_id,
                "verified": True,
                "status": status,
                "type": data.get("type"),
                "candidate": data.get("candidateId"),
                "tier": data.get("tier"),
            }
        )
        return status

    def write(self, row: dict[str, Any]) -> None:
        line = json.dumps({**row, "at": time.time()}).encode() + b"\n"
        with self.lock:
            self.out.write(line)
            self.out.flush()


def flaky(webhook_id: str) -> bool:
    """Whether the first attempt of this id is refused (one id in ten)."""
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 10 == 0


def handler_for(ledger: Ledger) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.answer(200 if self.path == "/healthz" else 404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.answer(ledger.accept(headers, body))

        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with open(os.environ["CHAOS_DELIVERIES"], "ab") as out:
        ledger = Ledger(out, os.environ["CHAOS_WEBHOOK_SECRET"])
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(ledger))
        server.daemon_threads = True
        server.serve_forever()


if __name__ == "__main__":
    main()
