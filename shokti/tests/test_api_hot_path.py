"""The webhook's hot path in the API base: the per-process API-key cache and the one-round-trip key throttle."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import ApiKey, Company
from crm.services import api_key_revoke
from crm.tenancy import api as authentication
from shokti.api.throttling import ApiKeyRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_key_cache():
    authentication.api_key_cache_clear()
    yield
    authentication.api_key_cache_clear()


@pytest.fixture
def clock(monkeypatch):
    """The cache's monotonic clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: now[0])
    return now


def get(raw_key):
    return APIClient().get("/api/contacts/", HTTP_X_API_KEY=raw_key)


def key_reads(raw_key) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert get(raw_key).status_code == 200
    return sum('FROM "crm_apikey"' in query["sql"] for query in captured.captured_queries)


def test_a_key_is_read_once_per_ttl(api_key, clock, settings):
    settings.API_KEY_CACHE_SECONDS = 10

    assert [key_reads(api_key[1]) for _ in range(3)] == [1, 0, 0]
    clock[0] += 11
    assert key_reads(api_key[1]) == 1


def test_a_revocation_saved_in_this_process_takes_effect_at_once(api_key, clock):
    assert get(api_key[1]).status_code == 200

    api_key_revoke(api_key=api_key[0])

    assert get(api_key[1]).status_code == 401


def test_an_inactive_company_saved_in_this_process_takes_effect_at_once(company, api_key, clock):
    assert get(api_key[1]).status_code == 200

    company.is_active = False
    company.save(update_fields=["is_active"])

    assert get(api_key[1]).status_code == 401


def test_a_revocation_written_elsewhere_takes_effect_within_the_ttl(api_key, clock, settings):
    # given a key cached by this process, and revoked by another one (no signal reaches us)
    settings.API_KEY_CACHE_SECONDS = 10
    assert get(api_key[1]).status_code == 200
    ApiKey.objects.filter(pk=api_key[0].pk).update(revoked_at="2026-01-01T00:00:00Z")
    Company.objects.filter(pk=api_key[0].company_id).update(name="renamed")

    # then the cached key still works until the TTL is over, and not after
    clock[0] += 9
    assert get(api_key[1]).status_code == 200
    clock[0] += 2
    response = get(api_key[1])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "This API key is revoked or its company is inactive."


def test_a_cached_key_still_checks_the_secret(api_key, clock):
    assert get(api_key[1]).status_code == 200

    wrong = api_key[1][:-1] + ("A" if api_key[1][-1] != "A" else "B")

    assert get(wrong).status_code == 401


def test_no_cache_with_a_zero_ttl(api_key, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    assert get(api_key[1]).status_code == 200
    ApiKey.objects.filter(pk=api_key[0].pk).update(revoked_at="2026-01-01T00:00:00Z")

    assert get(api_key[1]).status_code == 401


# --- the API-key throttle: a sliding window of two counters ---------------------------------


@pytest.fixture
def two_a_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api_key": "2/minute"},
    }


@pytest.fixture
def throttle_clock(monkeypatch):
    now = [60.0 * 29_000_000]  # the start of a minute
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: now[0])
    return now


def test_the_previous_window_counts_in_proportion_to_its_overlap(api_key, two_a_minute, throttle_clock):
    # given two requests late in one minute
    throttle_clock[0] += 50
    assert [get(api_key[1]).status_code for _ in range(2)] == [200, 200]

    # when the next minute starts, the last minute still almost fully counts
    throttle_clock[0] += 15  # 5 s into the next window: 2 x 55/60 + 1 > 2
    refused = get(api_key[1])
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 55

    # then once half of it has slid out there is room for one more (2 x 0.5 + 1 = 2), not two
    throttle_clock[0] += 25  # 30 s into the window
    assert [get(api_key[1]).status_code for _ in range(2)] == [200, 429]


def test_refused_requests_do_not_use_up_the_next_window(api_key, two_a_minute, throttle_clock):
    assert [get(api_key[1]).status_code for _ in range(10)] == [200, 200] + [429] * 8

    # two minutes on, both windows are new: the eight refusals were not counted
    throttle_clock[0] += 120
    assert [get(api_key[1]).status_code for _ in range(3)] == [200, 200, 429]


# --- the API's middleware chain (shokti.middleware.ApiChainMiddleware) ----------------------------------


def test_api_middleware_is_the_full_chain_less_what_an_api_call_never_uses(settings):
    from django.conf import settings as live

    assert live.MIDDLEWARE[0] == "shokti.middleware.ApiChainMiddleware"
    full = live.MIDDLEWARE[1:]
    assert [name for name in full if name in live.API_MIDDLEWARE] == live.API_MIDDLEWARE  # same order
    assert set(full) - set(live.API_MIDDLEWARE) == {
        "shokti.middleware.ConsolePlanMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    }


def test_key_and_token_views_skip_the_session_chain_and_session_views_keep_it(api_key, monkeypatch, admin_user):
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import Client

    seen = []
    process_request = SessionMiddleware.process_request
    monkeypatch.setattr(
        SessionMiddleware, "process_request", lambda self, request: seen.append(request.path) or process_request(self, request)
    )
    _, raw_key = api_key
    client = APIClient()
    body = {"phone_number": "+8801712345678", "message_text": "AC servicing?", "channel": "sms"}
    response = client.post("/inbound-message", body, format="json", HTTP_X_API_KEY=raw_key)
    assert response.status_code == 202, response.json()
    assert "Cookie" not in response.get("Vary", "")
    assert client.get("/api/contacts/", HTTP_X_API_KEY=raw_key).status_code == 200
    assert seen == []

    # A view that takes a console session (GET /queue/stats) and the console itself go down the full chain.
    console = Client()
    console.force_login(admin_user)
    assert console.get("/queue/stats").status_code in (200, 400)
    assert console.get("/admin/").status_code == 200
    assert client.get("/no-such-page").status_code == 404  # unresolved: the full chain answers
    assert seen == ["/queue/stats", "/admin/", "/no-such-page"]


def test_a_view_is_an_api_view_when_drf_authenticates_it_without_a_session():
    from django.urls import resolve

    from shokti.middleware import is_api_view

    assert is_api_view(resolve("/inbound-message").func)
    assert is_api_view(resolve("/api/contacts/").func)
    assert is_api_view(resolve("/api/token/").func)
    assert is_api_view(resolve("/book").func)  # a plain view marked api_chain: a customer's link
    assert is_api_view(resolve("/l/abc").func)
    assert not is_api_view(resolve("/queue/stats").func)  # SessionAuthentication among its authenticators
    assert not is_api_view(resolve("/admin/").func)  # not DRF
    assert not is_api_view(resolve("/health").func)
