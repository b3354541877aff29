"""A local ATS stand-in: receives webhook alerts, verifies their Standard Webhooks signature."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class ReceivedAlert:
    """One verified delivery."""

    webhook_id: str
    type: str
    tenant: str
    candidate: str
    score: int
    tier: str
    previous_tier: str

    def line(self) -> str:
        """Return the plain-text line printed for this alert."""
        return (
            f"webhook verified: {self.type} {self.tenant}/{self.candidate} score {self.score} "
            f"({self.previous_tier} -> {self.tier}) id {self.webhook_id}"
        )


def parse_alert(webhook_id: str, body: bytes) -> ReceivedAlert:
    """Return the alert a verified webhook body carries."""
    payload: dict[str, Any] = json.loads(body)
    data = payload.get("data", {})
    return ReceivedAlert(
        webhook_id=webhook_id,
        type=str(payload.get("type")),
        tenant=str(data.get("tenantId")),
        candidate=str(data.get("candidateId")),
        score=int(data.get("score", 0)),
        tier=str(data.get("tier")),
        previous_tier=str(data.get("previousTier")),
    )


class WebhookReceiver:
    """HTTP server on a background thread; ``on_alert`` is called once per verified webhook-id."""

    def __init__(
        self, *, host: str, port: int, secret: str, on_alert: Callable[[ReceivedAlert], None]
    ):
        self.verifier = Webhook(secret)
        self.on_alert = on_alert
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.rejected = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def accept(self, headers: dict[str, str], body: bytes) -> int:
        """Verify one delivery; return the HTTP status to answer (retries of a seen id: 200)."""
        try:
            self.verifier.verify(body, headers)
        except WebhookVerificationError:
            with self._lock:
                self.rejected += 1
            return 401
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            if webhook_id in self.seen:
                return 200
            self.seen[webhook_id] = None
            while len(self.seen) > 10_000:
                self.seen.popitem(last=False)
        self.on_alert(parse_alert(webhook_id, body))
        return 200


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(200 if self.path == "/healthz" else 404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._answer(receiver.accept(headers, body))

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet: alerts are printed instead
            pass

    return Handler


def run_standalone(*, host: str, port: int, secret: str) -> int:
    """Run the receiver alone (compose `webhook-receiver` service) until interrupted."""
    receiver = WebhookReceiver(
        host=host, port=port, secret=secret, on_alert=lambda a: print(a.line(), flush=True)
    )
    print(f"webhook receiver listening on http://{host}:{receiver.port}/", flush=True)
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server.server_close()
    return 0
