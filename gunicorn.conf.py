"""gunicorn settings, read from the working directory when gunicorn starts (`gunicorn shokti.wsgi`).

Command-line flags (the Procfile's --bind/--workers) override these.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
# Each worker keeps its own database connection; loading the app after fork avoids sharing one.
preload_app = False
# gunicorn's control socket has one fixed path per user: two servers on a machine (tests, a
# second checkout) would fight over it, and nothing here uses it.
control_socket_disable = True


def child_exit(server, worker):
    """A worker died or was recycled: let /metrics drop its live gauges (counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
