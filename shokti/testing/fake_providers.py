"""Local peers of the channel adapters for tests (a pytest plugin): SMTP, Twilio, Graph API, WhatsApp Web.

Each binds 127.0.0.1 on an ephemeral port, lives for the test session, is reset per test, and
points the matching setting at itself:
    smtp_server          aiosmtpd; `.messages` are the received email.message.Message objects
    fake_twilio          Twilio's REST API for Messages.create; `.requests` are the form posts
    fake_graph_api       Meta's Graph API /{version}/{phone_number_id}/messages; `.requests` JSON;
                         `.reject[message type] = (status, body)` refuses that type of message (say "audio")
    fake_whatsapp_web    a page imitating WhatsApp Web's chat (compose box, send button, sent
                         bubbles) or, with `.show_qr = True`, its QR login; `.sent` what was sent
Failures: `fake.fail(status=503, times=1, body={...})` on the two HTTP providers.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller

FAKE_WHATSAPP_DIR = Path(__file__).resolve().parents[2] / "channels_app" / "tests" / "fake_whatsapp"


# --- SMTP -----------------------------------------------------------------------------


class _Collector:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class EphemeralPortController(Controller):
    """aiosmtpd's Controller on port 0: learns the port the OS picked before its readiness check."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        return super()._trigger_server()


class SmtpServer:
    def __init__(self) -> None:
        self.collector = _Collector()
        self.controller = EphemeralPortController(self.collector, hostname="127.0.0.1", port=0)

    @property
    def messages(self):
        return self.collector.messages

    @property
    def envelopes(self):
        return self.collector.envelopes

    @property
    def port(self) -> int:
        return self.controller.port

    def reset(self) -> None:
        self.collector.messages.clear()
        self.collector.envelopes.clear()


@pytest.fixture(scope="session")
def _smtp_server_session():
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def smtp_server(_smtp_server_session):
    _smtp_server_session.reset()
    return _smtp_server_session


# --- HTTP providers ---------------------------------------------------------------------


class FakeHttpProvider:
    """A ThreadingHTTPServer whose answers tests can script."""

    name = "provider"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.failures: deque[tuple[int, dict[str, Any]]] = deque()
        # Files the provider holds: media id (Graph API) or media path (Twilio) -> (content type, bytes).
        self.media: dict[str, tuple[str, bytes]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"fake-{self.name}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.failures.clear()
            self.media.clear()

    def fail(self, *, status: int = 503, times: int = 1, body: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.failures.extend([(status, body or {"error": "fake outage"})] * times)

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def _handler_class(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with provider._lock:
                    failure = provider.failures.popleft() if provider.failures else None
                content_type = "application/json"
                if failure is not None:
                    status, payload = failure
                else:
                    answer = provider.answer(self.command, self.path, dict(self.headers), body)
                    status, payload = answer[0], answer[1]
                    if len(answer) > 2:  # a file: (status, bytes, content type)
                        content_type = answer[2]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        return Handler


class FakeTwilio(FakeHttpProvider):
    """Messages.create, and GET of an MMS's MediaUrl (`.media[path] = (content type, bytes)`, basic auth)."""

    name = "twilio"

    def answer(self, method, path, headers, body):
        if method == "GET" and "/Media/" in path:
            with self._lock:
                self.requests.append({"method": method, "path": path, "authorization": headers.get("Authorization", "")})
                media = self.media.get(path)
            if not headers.get("Authorization", "").startswith("Basic "):
                return 401, {"code": 20003, "message": "Authenticate"}
            if media is None:
                return 404, {"code": 20404, "message": "Not found"}
            return 200, media[1], media[0]
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        sid = f"SM{uuid.uuid4().hex}"
        with self._lock:
            self.requests.append({"method": method, "path": path, "authorization": headers.get("Authorization", ""), **form})
        account_sid = path.split("/Accounts/")[1].split("/")[0] if "/Accounts/" in path else ""
        return 201, {
            "sid": sid,
            "account_sid": account_sid,
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }


class FakeGraphApi(FakeHttpProvider):
    """POST /{version}/{phone_number_id}/messages; GET /{version}/{media id} (the media's description and a
    download URL on this server) and GET /download/{media id} (the bytes), for `.media[id] = (type, bytes)`."""

    name = "graph-api"

    def __init__(self) -> None:
        super().__init__()
        self.reject: dict[str, tuple[int, dict[str, Any]]] = {}

    def reset(self) -> None:
        super().reset()
        self.reject.clear()

    def answer(self, method, path, headers, body):
        if method == "GET":
            return self._media_answer(path, headers)
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": {"message": "bad json", "code": 100}}
        with self._lock:
            self.requests.append({"path": path, "authorization": headers.get("Authorization", ""), "json": payload})
            rejected = self.reject.get(payload.get("type"))
        if rejected is not None:
            return rejected
        return 200, {
            "messaging_product": "whatsapp",
            "contacts": [{"input": payload.get("to"), "wa_id": payload.get("to")}],
            "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}],
        }

    def _media_answer(self, path: str, headers: dict[str, str]):
        with self._lock:
            self.requests.append({"method": "GET", "path": path, "authorization": headers.get("Authorization", "")})
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 401, {"error": {"message": "Invalid OAuth access token", "code": 190}}
        parts = urlsplit(path).path.strip("/").split("/")
        if parts[0] == "download":
            media = self.media.get(parts[1]) if len(parts) > 1 else None
            if media is None:
                return 404, {"error": {"message": "gone", "code": 100}}
            return 200, media[1], media[0]
        media_id = parts[-1]
        media = self.media.get(media_id)
        if media is None:
            return 400, {"error": {"message": "Unsupported get request.", "code": 100, "error_subcode": 33}}
        content_type, content = media
        return 200, {
            "messaging_product": "whatsapp",
            "url": f"{self.url}/download/{media_id}",
            "mime_type": content_type,
            "sha256": hashlib.sha256(content).hexdigest(),
            "file_size": len(content),
            "id": media_id,
        }


@pytest.fixture(scope="session")
def _fake_twilio_session():
    server = FakeTwilio()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_twilio(_fake_twilio_session, settings):
    _fake_twilio_session.reset()
    settings.TWILIO_API_BASE_URL = _fake_twilio_session.url
    return _fake_twilio_session


@pytest.fixture
def twilio_account(company, fake_twilio):
    """`company`'s SMS account on the local fake Twilio (its auth token `twilio-auth-token`)."""
    from channels_app.models import ChannelAccount

    account = ChannelAccount(
        company=company, channel="sms", name="Twilio",
        settings={"account_sid": "AC" + "1" * 32, "from_number": "+15005550006"},
    )
    account.secrets_set({"auth_token": "twilio-auth-token"})
    account.save()
    return account


@pytest.fixture(scope="session")
def _fake_graph_api_session():
    server = FakeGraphApi()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_graph_api(_fake_graph_api_session, settings):
    _fake_graph_api_session.reset()
    settings.WHATSAPP_GRAPH_API_BASE_URL = _fake_graph_api_session.url
    return _fake_graph_api_session


# --- WhatsApp Web -----------------------------------------------------------------------


class FakeWhatsAppWeb(FakeHttpProvider):
    """Serves channels_app/tests/fake_whatsapp/: /send?phone=... is the chat (or the QR page)."""

    name = "whatsapp-web"

    def __init__(self) -> None:
        self.show_qr = False
        self.sent: list[dict[str, Any]] = []
        super().__init__()

    def reset(self) -> None:
        with self._lock:
            self.show_qr = False
            self.sent.clear()

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if urlsplit(self.path).path != "/send":
                    self._reply(404, b"not found", "text/plain")
                    return
                page = "qr.html" if fake.show_qr else "chat.html"
                self._reply(200, (FAKE_WHATSAPP_DIR / page).read_bytes(), "text/html; charset=utf-8")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.sent.append(payload)
                self._reply(204, b"", "text/plain")

        return Handler


@pytest.fixture(scope="session")
def _fake_whatsapp_web_session():
    fake = FakeWhatsAppWeb()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_whatsapp_web(_fake_whatsapp_web_session, settings, tmp_path):
    _fake_whatsapp_web_session.reset()
    settings.WHATSAPP_WEB_BASE_URL = _fake_whatsapp_web_session.url
    settings.WHATSAPP_SESSION_DIR = str(tmp_path / "whatsapp_session")
    settings.WHATSAPP_WEB_CHAR_DELAY_MS = [0, 0]
    settings.WHATSAPP_WEB_WORD_DELAY_MS = [0, 0]
    settings.WHATSAPP_WEB_SEND_DELAY_MS = [0, 0]
    settings.WHATSAPP_WEB_MESSAGE_GAP_SECONDS = 0
    settings.WHATSAPP_WEB_MESSAGE_GAP_JITTER_SECONDS = 0
    settings.WHATSAPP_WEB_LOAD_TIMEOUT_SECONDS = 20
    settings.WHATSAPP_WEB_CONFIRM_TIMEOUT_SECONDS = 10
    return _fake_whatsapp_web_session
