"""A local text-to-speech server for tests: OpenAI-compatible `POST /v1/audio/speech`, Azure Speech's
`POST /cognitiveservices/v1` and ElevenLabs' `POST /v1/text-to-speech/<voice>` on 127.0.0.1, answering MP3-ish bytes.

    server = FakeTTS(); server.start()
    server.fail(status=500)        the next calls fail with that status
    server.requests                (path, headers, body bytes) of each call
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00fake-mp3-frames"


class FakeTTS:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, bytes]] = []
        self.failure_status: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((self.path, dict(self.headers), body))
                if server.failure_status:
                    self.send_response(server.failure_status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "unavailable"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(AUDIO)))
                self.end_headers()
                self.wfile.write(AUDIO)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, *, status: int = 500) -> None:
        self.failure_status = status

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
