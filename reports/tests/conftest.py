import pytest


@pytest.fixture(autouse=True)
def reports_alias_reads_the_test_transaction(request):
    """The `reports` alias is a test mirror of `default` (settings). A mirror is a second connection, which cannot
    see the rows a test writes inside its own transaction; in transactional tests (`db`) it is pointed at
    default's connection for the test. Tests marked `django_db(transaction=True)` keep the real second
    connection (reads of committed rows, as in production)."""
    from django.db import connections

    marker = request.node.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("transaction"):
        yield
        return
    if "db" not in request.fixturenames and marker is None:
        yield
        return
    request.getfixturevalue("db")
    real = connections["reports"]
    connections["reports"] = connections["default"]
    yield
    connections["reports"] = real
