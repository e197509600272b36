"""Plumbing under the hot paths: prepared statements, the broker's Redis client, settings read once, indexes."""

import pytest
from django.conf import settings
from django.db import connection

from crm.services import phone_normalize
from shokti.celery import DjangoCelerySettings, app


@pytest.mark.django_db
def test_a_statement_run_often_on_a_connection_is_prepared_by_postgresql():
    # psycopg prepares a statement from its `prepare_threshold`-th run (server-side binding):
    # PostgreSQL then skips parsing and planning it (the webhook's five statements, the send job's).
    assert settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    sql = "SELECT %s::int + 41 /* hot-path-plumbing */"
    with connection.cursor() as cursor:
        for _ in range(threshold + 1):
            cursor.execute(sql, [1])
            assert cursor.fetchone() == (42,)
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%hot-path-plumbing%"])
        assert cursor.fetchone() == (1,)


def test_the_broker_channel_keeps_one_redis_client_per_pool():
    with app.connection_for_write() as broker:
        channel = broker.default_channel
        first = channel._create_client()
        assert channel._create_client() is first  # kombu alone builds one per publish
        assert first.connection_pool is channel.pool
        assert first.ping()
        channel._disconnect_pools()  # what kombu does after a fork
        replaced = channel._create_client()
        assert replaced is not first
        assert replaced.connection_pool is channel.pool
        assert replaced.ping()


def test_a_task_published_through_the_shared_client_reaches_the_queue():
    queue = "hot-path-plumbing-test"
    with app.connection_for_write() as broker:
        client = broker.default_channel._create_client()
        client.delete(queue)
        for _ in range(3):
            app.send_task("engage.tasks.job_run", args=[0], queue=queue, connection=broker, retry=False)
        assert sum(client.llen(name) for name in client.keys(f"{queue}*")) == 3
        for name in client.keys(f"{queue}*"):
            client.delete(name)


def test_celery_reads_the_celery_django_settings_by_their_lowercase_names():
    values = DjangoCelerySettings()
    assert values["task_acks_late"] is settings.CELERY_TASK_ACKS_LATE
    assert values["broker_url"] == settings.CELERY_BROKER_URL
    assert "broker_transport" in values and "task_time_limit" in values
    assert all(not name.startswith("celery_") and name == name.lower() for name in values)
    assert len(values) == len([name for name in dir(settings) if name.startswith("CELERY_")])
    assert app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT


def test_an_invalid_phone_is_refused_every_time_not_remembered():
    from django.core.exceptions import ValidationError

    assert phone_normalize(phone="01712345678", region="BD") == "+8801712345678"
    assert phone_normalize(phone="01712345678", region="BD") == "+8801712345678"
    for _ in range(2):
        with pytest.raises(ValidationError):
            phone_normalize(phone="12", region="BD")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("table", "column", "covering_index"),
    [
        ("engage_message", "company_id", "message_company_created"),
        ("engage_message", "contact_id", "message_contact_created"),
        ("engage_message", "lead_id", "message_lead_created"),
        ("engage_job", "company_id", "job_company_status"),
        ("crm_event", "company_id", "event_company_occurred"),
        ("crm_event", "contact_id", "event_contact_occurred"),
        ("crm_event", "target_type_id", "event_target"),
        ("crm_contact", "company_id", "contact_company_email"),
        ("crm_lead", "company_id", "lead_company_stage"),
    ],
)
def test_a_foreign_key_led_by_a_composite_index_has_no_index_of_its_own_but_keeps_its_constraint(
    table, column, covering_index
):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        indexes = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
            " AND a.attnum = ANY(c.conkey) WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = %s",
            [table, column],
        )
        foreign_keys = cursor.fetchone()[0]
    assert not [name for name, definition in indexes.items() if definition.endswith(f"USING btree ({column})")]
    assert indexes[covering_index].split("USING btree (", 1)[1].startswith(column)
    assert foreign_keys == 1
