"""The `reports` database alias in tests (a pytest plugin, see conftest.py).

Settings make `reports` a test mirror of `default` (DATABASE_REPLICA_URL unset or not). A mirror is a second
connection: it cannot see the rows a test writes inside its own transaction, and pytest-django forbids it in
tests that did not ask for it. So in every test that uses the database, the alias is pointed at default's connection for the test (the same
database either way); a test that names `reports` in `django_db(databases=[...])` keeps the real second
connection. Live servers' threads open their own connections, the real ones (committed rows, as in production)."""

import pytest


@pytest.fixture(autouse=True)
def _reports_alias_reads_the_test_transaction(request):
    marker = request.node.get_closest_marker("django_db")
    fixtures = request.fixturenames
    uses_db = marker is not None or "db" in fixtures or "transactional_db" in fixtures or "live_server" in fixtures
    databases = (marker.kwargs.get("databases") if marker is not None else None) or ()
    if not uses_db or "reports" in databases or databases == "__all__":
        yield
        return
    from django.db import connections

    # the database first (pytest-django marks the aliases a test may not use), then the swap
    transactional = "transactional_db" in fixtures or "live_server" in fixtures or (
        marker is not None and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    real = connections["reports"]
    connections["reports"] = connections["default"]
    yield
    connections["reports"] = real
