"""Console pages plan each query for their own company; the API and the connection afterwards keep the
configured plan_cache_mode (shokti.middleware.ConsolePlanMiddleware)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

pytestmark = pytest.mark.django_db


def plan_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plan_cache_mode is PostgreSQL's")
def test_a_console_page_runs_with_custom_plans_and_restores_the_connections_mode(client, staff_user):
    client.force_login(staff_user)
    before = plan_mode()

    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("admin:crm_contact_changelist"))

    assert response.status_code == 200
    statements = [query["sql"] for query in queries.captured_queries]
    assert statements[0] == "SET plan_cache_mode = force_custom_plan"
    assert statements[-1] == "RESET plan_cache_mode"
    assert plan_mode() == before


def test_an_api_request_does_not_touch_the_plan_mode(client):
    with CaptureQueriesContext(connection) as queries:
        client.get("/health")

    assert not any("plan_cache_mode" in query["sql"] for query in queries.captured_queries)
