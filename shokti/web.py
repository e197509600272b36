"""The web server: granian serving `shokti.wsgi` (`python -m shokti.web`; the Procfile, the Docker image and the
tests start it this way). Settings from the environment (docs/configuration.md, "Processes"):

- `WEB_HOST` (127.0.0.1; the image sets 0.0.0.0) and `PORT` (8000);
- `WEB_CONCURRENCY` worker processes (2) of `WEB_THREADS` threads each (2): a request waiting on the
  database or Redis holds its thread, not its process;
- `WEB_ACCESS_LOG` (true): one line per request on standard output.

Why granian and not gunicorn: under the webhook's load gunicorn's sync workers (HTTP parsed in Python,
one process per request in flight) cost ~1.1 ms more CPU per request than granian's Rust HTTP server
with the same Django app (docs/benchmarks.md, "The webhook against the seed's stack"). What granian
answers itself, without Django: a request it cannot parse as HTTP (400) and a request head over its 400 KB
buffer (414/431), with an empty body; every URL up to that size reaches Django, which answers a URL over
`HTTP_MAX_URL_LENGTH` with the JSON 414. Workers that die are started again.
"""

from __future__ import annotations

import os

from granian.constants import Interfaces
from granian.server import Server


def _flag(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def server() -> Server:
    return Server(
        "shokti.wsgi:application",
        address=os.environ.get("WEB_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT") or 8000),
        interface=Interfaces.WSGI,
        workers=int(os.environ.get("WEB_CONCURRENCY") or 2),
        blocking_threads=int(os.environ.get("WEB_THREADS") or 2),
        websockets=False,
        log_access=_flag("WEB_ACCESS_LOG", True),
        respawn_failed_workers=True,
    )


if __name__ == "__main__":
    server().serve()
