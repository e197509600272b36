"""`make run`'s embedded mode end to end (the stack: shokti/testing/embedded.py): no DATABASE_URL/REDIS_URL,
a SQLite file and Celery's filesystem broker in a tmp var dir; migrate (schedules included), seed_demo,
collectstatic, then the Procfile under honcho (web on granian, worker, whatsapp_web worker, beat).
One of the slow tests of the suite (30-90 s; the stack is shared with the newcomer's walk in a browser).
"""

import re

import pytest
import requests

from shokti.testing.embedded import ADMIN_PASSWORD, REQUEST_SECONDS, ROOT, manage, wait_for

pytestmark = pytest.mark.slow


def test_embedded_mode_serves_health_admin_with_demo_data_and_runs_tasks(embedded_stack):
    base_url, env, log, seed_output = (
        embedded_stack.base_url, embedded_stack.env, embedded_stack.log, embedded_stack.seed_output
    )
    assert "admin@shokti.local" in seed_output
    assert not (ROOT / "control").exists()  # the broker's files stay in the var dir

    # /health: the SQLite database and the filesystem broker answer
    health = requests.get(f"{base_url}/health", timeout=REQUEST_SECONDS)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert {"database", "broker"} <= set(body["checks"])
    assert "failing" not in body

    # the admin login form, then the demo data behind it
    session = requests.Session()
    login_page = session.get(f"{base_url}/admin/login/", timeout=REQUEST_SECONDS)
    assert login_page.status_code == 200
    assert 'name="username"' in login_page.text and 'name="password"' in login_page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    logged_in = session.post(
        f"{base_url}/admin/login/?next=/admin/crm/company/",
        data={"csrfmiddlewaretoken": token, "username": "admin@shokti.local", "password": ADMIN_PASSWORD},
        headers={"Referer": f"{base_url}/admin/login/"},
        timeout=REQUEST_SECONDS,
    )
    assert logged_in.status_code == 200
    assert logged_in.url.endswith("/admin/crm/company/")
    assert "Sheba Home Services (demo)" in logged_in.text
    assert "Shikkha Courses (demo)" in logged_in.text

    # a task sent in embedded mode travels through the filesystem broker and runs on the worker
    wait_for(log, r"default@\S+ ready")
    sent = manage(
        env, "shell", "-c",
        "from shokti.celery import app; print(app.send_task('celery.accumulate', args=['embedded-ok']).id)",
    )
    task_id = sent.strip().splitlines()[-1]
    wait_for(log, rf"Task celery\.accumulate\[{task_id}\] succeeded in [0-9.]+s: \('embedded-ok',\)", seconds=30)
