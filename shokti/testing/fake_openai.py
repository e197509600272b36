"""A local OpenAI-compatible HTTP server for tests (a pytest plugin).

The real `openai` SDK talks to it over HTTP on 127.0.0.1, so the project's own client code
runs unchanged and no test reaches the internet. One server per test session on an
ephemeral port; every test that asks for `fake_openai` gets it reset and settings pointed at it.

Scripting, per test:
    fake_openai.reply("text")                  every call answers "text"
    fake_openai.queue("a", "b", FakeFailure(500))   one answer per call, in order, then the default
    fake_openai.respond_with(lambda request: ...)   answer computed from the request JSON
    fake_openai.fail(status=500, times=2)      the next N calls fail with that HTTP status
    fake_openai.delay = 2.0                    seconds to wait before answering
    fake_openai.requests                       the JSON bodies received (with a "_headers" key)

Moderation (`POST /v1/moderations`, OpenAI's documented moderation object: `id`, `model`,
`results[]` with `flagged`, `categories`, `category_scores`, `category_applied_input_types`;
see the API reference, "Moderations > The moderation object"):
    fake_openai.flag("harassment", "violence")  every input is flagged in these categories
    fake_openai.moderate = lambda text: [...]   the flagged categories computed from the input
    fake_openai.moderation_failure = FakeFailure(500)   the endpoint fails
    fake_openai.moderation_delay = 2.0
    fake_openai.moderation_requests            the JSON bodies received

Tone judge (chat completions sent with the header `X-Shokti-Purpose: tone_judge`):
    fake_openai.tone_verdict = {"polite": True, ...}   the JSON the judge answers (default: all true)
    fake_openai.judge_requests                 the judge's requests (not in `requests`)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

DEFAULT_ANSWER = "Hello from the fake model."
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
    "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
)
DEFAULT_TONE_VERDICT = {"polite": True, "respectful_address": True, "no_pressure": True, "no_blame": True,
                        "explanation": "Polite and calm."}


@dataclass(frozen=True)
class FakeFailure:
    """An HTTP error answer: 500 (server error), 429 (rate limit), 400 ..."""

    status: int = 500
    message: str = "fake failure"


Answer = str | FakeFailure | Callable[[dict[str, Any]], "str | FakeFailure"]


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


class FakeOpenAI:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.default: Answer = DEFAULT_ANSWER
        self.answers: deque[Answer] = deque()
        self.delay = 0.0
        self.moderation_requests: list[dict[str, Any]] = []
        self.judge_requests: list[dict[str, Any]] = []
        self.moderate: Callable[[str], list[str]] = lambda text: []
        self.moderation_failure: FakeFailure | None = None
        self.moderation_delay = 0.0
        self.tone_verdict: dict[str, Any] | FakeFailure = dict(DEFAULT_TONE_VERDICT)
        self._generation = 0  # bumped by reset(): a request from an earlier test is never answered later
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    # -- scripting -------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.requests.clear()
            self.answers.clear()
            self.default = DEFAULT_ANSWER
            self.delay = 0.0
            self.moderation_requests.clear()
            self.judge_requests.clear()
            self.moderate = lambda text: []
            self.moderation_failure = None
            self.moderation_delay = 0.0
            self.tone_verdict = dict(DEFAULT_TONE_VERDICT)

    def reply(self, text: str) -> None:
        self.default = text

    def queue(self, *answers: Answer) -> None:
        with self._lock:
            self.answers.extend(answers)

    def respond_with(self, function: Callable[[dict[str, Any]], str | FakeFailure]) -> None:
        self.default = function

    def flag(self, *categories: str) -> None:
        self.moderate = lambda text: list(categories)

    def fail(self, *, status: int = 500, times: int = 1) -> None:
        self.queue(*[FakeFailure(status=status)] * times)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    # -- server ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_answer(self, request: dict[str, Any]) -> str | FakeFailure:
        with self._lock:
            answer = self.answers.popleft() if self.answers else self.default
        while callable(answer):
            answer = answer(request)
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send_json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    # Tells the SDK how long to wait before retrying, so retry tests stay fast.
                    self.send_header("retry-after-ms", "10")
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send_json(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
                    return
                request["_headers"] = {key.lower(): value for key, value in self.headers.items()}
                request["_path"] = self.path
                path = self.path.rstrip("/")
                if path == "/v1/moderations":
                    self._moderation(request)
                    return
                if request["_headers"].get("x-shokti-purpose") == "tone_judge":
                    self._judge(request)
                    return
                with fake._lock:
                    fake.requests.append(request)
                    generation = fake._generation
                if path != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                if fake.delay:
                    time.sleep(fake.delay)
                    if generation != fake._generation:  # the test that sent it is over
                        self.close_connection = True
                        return
                answer = fake._next_answer(request)
                if isinstance(answer, FakeFailure):
                    self._send_json(
                        answer.status,
                        {"error": {"message": answer.message, "type": "server_error", "code": str(answer.status)}},
                    )
                    return
                self._completion(request, answer)

            def _failure(self, failure: FakeFailure) -> None:
                self._send_json(
                    failure.status,
                    {"error": {"message": failure.message, "type": "server_error", "code": str(failure.status)}},
                )

            def _moderation(self, request: dict[str, Any]) -> None:
                with fake._lock:
                    fake.moderation_requests.append(request)
                    generation = fake._generation
                if fake.moderation_delay:
                    time.sleep(fake.moderation_delay)
                    if generation != fake._generation:
                        self.close_connection = True
                        return
                if fake.moderation_failure is not None:
                    self._failure(fake.moderation_failure)
                    return
                inputs = request.get("input", "")
                texts = inputs if isinstance(inputs, list) else [inputs]
                results = []
                for text in texts:
                    flagged = set(fake.moderate(str(text)))
                    results.append({
                        "flagged": bool(flagged),
                        "categories": {name: name in flagged for name in MODERATION_CATEGORIES},
                        "category_scores": {name: 0.97 if name in flagged else 0.0001 for name in MODERATION_CATEGORIES},
                        "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
                    })
                self._send_json(200, {"id": f"modr-{uuid.uuid4().hex}",
                                      "model": request.get("model", "omni-moderation-latest"), "results": results})

            def _judge(self, request: dict[str, Any]) -> None:
                with fake._lock:
                    fake.judge_requests.append(request)
                verdict = fake.tone_verdict
                if isinstance(verdict, FakeFailure):
                    self._failure(verdict)
                    return
                self._completion(request, json.dumps(verdict, ensure_ascii=False))

            def _completion(self, request: dict[str, Any], answer: str) -> None:
                prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in request.get("messages", []))
                completion_tokens = count_tokens(answer)
                self._send_json(
                    200,
                    {
                        "id": f"chatcmpl-{uuid.uuid4().hex}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", "gpt-4o-mini"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer},
                                "finish_reason": "stop",
                                "logprobs": None,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    },
                )

        return Handler


@pytest.fixture(scope="session")
def fake_openai_server():
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(fake_openai_server, settings):
    """The fake server, reset, with OPENAI_BASE_URL/OPENAI_API_KEY pointing at it."""
    fake_openai_server.reset()
    settings.OPENAI_BASE_URL = fake_openai_server.base_url
    settings.OPENAI_API_KEY = "test"
    settings.OPENAI_MAX_RETRIES = 2
    settings.OPENAI_TIMEOUT_SECONDS = 5.0
    yield fake_openai_server
    fake_openai_server.reset()
