"""Degrade, don't fail: a lost database connection is retried or a JSON 503; Redis away fails soft and open;
the client IP is the trusted proxies' word, not the client's own X-Forwarded-For.

(Against real servers and processes: shokti/tests/test_faults.py.)
"""

import socket

import pytest
from django.core.cache import cache
from django.test import Client
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from engage.models import Job, Message
from shokti.api.client_ip import client_ip
from shokti.cache import cache_is_available, redis_outage
from shokti.tests.urls_errors import Flaky


def error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the database goes away mid-request ---------------------------------------------------------------


@pytest.fixture
def flaky():
    Flaky.reset()
    yield Flaky
    Flaky.reset()


@pytest.mark.urls("shokti.tests.urls_errors")
@pytest.mark.django_db(transaction=True)
def test_a_read_that_lost_its_connection_runs_again_on_a_new_one(flaky):
    response = Client().get("/flaky")

    assert response.status_code == 200
    assert flaky.calls == {"plain": 2}


@pytest.mark.urls("shokti.tests.urls_errors")
@pytest.mark.django_db(transaction=True)
def test_a_request_that_fails_twice_is_a_json_503_with_retry_after(flaky, settings):
    settings.SERVICE_UNAVAILABLE_RETRY_AFTER_SECONDS = 7

    plain = Client().get("/flaky", {"failures": 5})
    api = Client().get("/api/flaky/", {"failures": 5})

    for response in (plain, api):
        assert response.status_code == 503
        assert response["Retry-After"] == "7"
        assert error(response) == {
            "code": "unavailable",
            "message": "The service is briefly unavailable (the database is restarting?); retry in a few seconds.",
            "fields": {},
            "retry_after_seconds": 7,
        }
    assert flaky.calls == {"plain": 2, "api-get": 2}


@pytest.mark.urls("shokti.tests.urls_errors")
@pytest.mark.django_db(transaction=True)
def test_a_write_is_not_run_twice_unless_its_view_says_it_is_safe(flaky):
    unsafe = APIClient().post("/api/flaky/", {"n": 1}, format="json")
    safe = APIClient().post("/api/flaky-retry-safe/", {"n": 1}, format="json")

    assert unsafe.status_code == 503 and error(unsafe)["code"] == "unavailable"
    assert flaky.calls == {"post FlakyApi": 1, "post FlakyRetrySafeApi": 2}
    assert safe.status_code == 200 and safe.json() == {"ok": True, "data": {"n": 1}}  # the body read again


def test_the_inbound_webhook_is_retry_safe():
    from engage.conversations.apis import InboundMessageApi

    assert InboundMessageApi.is_retry_safe is True


# --- Redis goes away ---------------------------------------------------------------------------------


@pytest.fixture
def redis_away(settings, closed_port):
    """The Django cache (throttles, policy snapshots) on a port nothing listens on; the broker stays up."""
    settings.CACHES = {
        "default": {
            "BACKEND": "shokti.cache.FailSoftRedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    yield
    redis_outage.reset()


def test_the_cache_fails_soft_and_stops_trying_for_a_while(redis_away):
    misses = sample("cache_unavailable_total", operation="get")

    assert cache.get("anything", "default") == "default"
    assert cache.add("key", 1) is False
    assert cache.set("key", 1) is None
    assert cache.get_many(["a", "b"]) == {}
    assert not cache_is_available()
    assert sample("cache_unavailable_total", operation="get") == misses + 1


@pytest.mark.django_db
def test_with_redis_away_inbound_messages_are_accepted_and_throttles_fail_open(redis_away, key_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_key": "2/minute"},
    }
    let_through = sample("throttle_fail_open_total", scope="api_key")

    statuses = [
        key_client.post("/inbound-message", {"phone_number": f"+88017110000{n:02d}", "message_text": "hello",
                                             "channel": "console"}, format="json").status_code
        for n in range(4)
    ]

    assert statuses == [202] * 4  # over the 2/minute rate: the throttle could not count, so it let them in
    assert Message.objects.filter(direction="inbound").count() == 4
    assert Job.objects.filter(task_name="ai_engage").count() == 4
    assert sample("throttle_fail_open_total", scope="api_key") == let_through + 4


@pytest.mark.django_db
def test_with_redis_back_the_throttle_counts_again(key_client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_key": "2/minute"},
    }

    statuses = [key_client.get("/queue/stats").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


# --- the client's address ------------------------------------------------------------------------------


class FakeRequest:
    def __init__(self, remote_addr: str, forwarded: str | None = None):
        self.META = {"REMOTE_ADDR": remote_addr}
        if forwarded is not None:
            self.META["HTTP_X_FORWARDED_FOR"] = forwarded


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.1"),  # no trusted proxy: whatever the client wrote is ignored
        (1, None, "10.0.0.1"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # our proxy appended the address it saw
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (3, "203.0.113.7, 10.0.0.2", "203.0.113.7"),  # fewer hops than proxies: the leftmost
        (1, "6.6.6.6, not-an-address", "10.0.0.1"),  # a broken header never becomes the address
    ],
)
def test_the_client_ip_trusts_only_the_configured_proxies(settings, proxies, forwarded, expected):
    settings.NUM_PROXIES = proxies

    assert client_ip(FakeRequest("10.0.0.1", forwarded)) == expected


@pytest.mark.django_db
def test_a_spoofed_x_forwarded_for_does_not_move_the_otp_limit(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_request_ip": "3/h"},
    }
    client = APIClient()

    statuses = [
        client.post("/auth/request-otp", {"email": f"p{n}@example.test"}, format="json",
                    HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(5)
    ]

    assert statuses == [200, 200, 200, 429, 429]


@pytest.mark.django_db
def test_behind_one_proxy_the_limit_follows_the_address_the_proxy_saw(settings):
    settings.NUM_PROXIES = 1
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_request_ip": "2/h"},
    }
    client = APIClient(REMOTE_ADDR="10.0.0.2")  # the load balancer

    def ask(forwarded: str, n: int) -> int:
        return client.post("/auth/request-otp", {"email": f"p{n}@example.test"}, format="json",
                           HTTP_X_FORWARDED_FOR=forwarded).status_code

    # the client rewrites what it sends; the proxy's own last entry is the same client each time
    assert [ask(f"6.6.6.{n}, 203.0.113.7", n) for n in range(3)] == [200, 200, 429]
    # another client behind the same proxy has its own bucket
    assert ask("203.0.113.8", 9) == 200
