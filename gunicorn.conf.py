"""gunicorn settings, read from the working directory when gunicorn starts (`gunicorn shokti.wsgi`).

Command-line flags (the Procfile's --bind/--workers) override these.
"""

import json
import os

from gunicorn import util

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
# Each worker keeps its own database connection; loading the app after fork avoids sharing one.
preload_app = False
# gunicorn's control socket has one fixed path per user: two servers on a machine (tests, a
# second checkout) would fight over it, and nothing here uses it.
control_socket_disable = True
# Request lines up to gunicorn's maximum (8190 bytes; its default is 4094): long /book?token=...
# URLs reach Django, which answers JSON (a 414 past HTTP_MAX_URL_LENGTH, a 400 for a bad token).
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "8190"))


def _json_write_error(sock, status_int, reason, mesg):
    """gunicorn's own answers (a request line over the limit: 414; a malformed request: 400) in the API's
    one error shape instead of an HTML page. The message stays generic: it may quote the request."""
    codes = {400: "invalid", 403: "permission_denied", 414: "uri_too_long", 431: "headers_too_large"}
    body = json.dumps(
        {"error": {"code": codes.get(status_int, "error"), "message": f"{reason}.", "fields": {}}}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin1")
    util.write_nonblock(sock, head + body)


# The worker's error path calls util.write_error (gunicorn/workers/base.py handle_error).
util.write_error = _json_write_error


def child_exit(server, worker):
    """A worker died or was recycled: let /metrics drop its live gauges (counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
