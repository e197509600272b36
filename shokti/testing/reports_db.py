"""The `reports` database alias in tests (a pytest plugin, see conftest.py).

Settings make `reports` a test mirror of `default` (DATABASE_REPLICA_URL unset or not). A mirror is a second
connection: it cannot see the rows a test writes inside its own transaction, and pytest-django forbids it in
tests that did not ask for it. So in every test that uses the database in a transaction, the alias is pointed at default's connection for the
test (the same database either way). Transactional tests and live servers get `reports` added to their
databases instead and keep the real second connection (committed rows, as in production)."""

import pytest

TRANSACTIONAL_FIXTURES = ("transactional_db", "live_server", "django_db_serialized_rollback")


def pytest_collection_modifyitems(items):
    """Transactional tests and live servers (whose threads open their own connections) may use `reports`: their
    rows are committed, so the mirror's own connection sees them."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        transactional = any(name in getattr(item, "fixturenames", ()) for name in TRANSACTIONAL_FIXTURES) or (
            marker is not None and marker.kwargs.get("transaction"))
        if not transactional:
            continue
        kwargs = dict(marker.kwargs) if marker is not None else {}
        databases = kwargs.get("databases") or ["default"]
        if databases == "__all__" or "reports" in databases:
            continue
        kwargs.update(transaction=True, databases=[*databases, "reports"])
        item.add_marker(pytest.mark.django_db(*(marker.args if marker is not None else ()), **kwargs))


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
    request.getfixturevalue("db")
    real = connections["reports"]
    connections["reports"] = connections["default"]
    yield
    connections["reports"] = real
