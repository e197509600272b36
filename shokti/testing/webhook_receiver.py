"""A local HTTP endpoint that receives outbound webhooks as an integrator's server would.

It checks each delivery's `X-Shokti-Signature` (HMAC-SHA256 of "{timestamp}.{body}" with its own
secret) and keeps what came: `Delivery(payload, is_valid, headers, body)`. A delivery with a bad
signature is answered 401; a good one `status` (200 by default: set 500 to make the sender retry).
The `webhook_receiver` fixture makes them: `receiver = webhook_receiver(secret=..., status=...)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest


class Delivery(NamedTuple):
    payload: Any
    is_valid: bool
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    def __init__(self, secret: str, status: int = 200):
        self.secret, self.status, self.received = secret, status, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers.get("X-Shokti-Timestamp", "")
                expected = "sha256=" + hmac.new(
                    receiver.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
                ).hexdigest()
                is_valid = hmac.compare_digest(expected, self.headers.get("X-Shokti-Signature", ""))
                receiver.received.append(Delivery(json.loads(body), is_valid, dict(self.headers.items()), body))
                self.send_response(receiver.status if is_valid else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    """Make receivers: `webhook_receiver(secret="whsec-...", status=200)`; all closed after the test."""
    made: list[WebhookReceiver] = []

    def make(secret: str = "whsec-test", status: int = 200) -> WebhookReceiver:
        made.append(WebhookReceiver(secret, status))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()
