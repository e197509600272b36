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

import environ
from granian.constants import Interfaces
from granian.server import Server


def server() -> Server:
    env = environ.Env()
    return Server(
        "shokti.wsgi:application",
        address=env.str("WEB_HOST", default="127.0.0.1"),
        port=env.int("PORT", default=8000),
        interface=Interfaces.WSGI,
        workers=env.int("WEB_CONCURRENCY", default=2),
        blocking_threads=env.int("WEB_THREADS", default=2),
        websockets=False,
        log_access=env.bool("WEB_ACCESS_LOG", default=True),
        respawn_failed_workers=True,
    )


if __name__ == "__main__":
    server().serve()
