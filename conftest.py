"""Project-wide pytest fixtures: the three people of every permission test, and API clients."""

import os

import pytest

# live_server + Playwright tests touch the database from the browser's thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Test helpers (fake servers, workers, resets) as pytest plugins in shokti/testing/: append yours.
pytest_plugins = [
    "shokti.testing.throttling",
    "shokti.testing.fake_openai",
    "shokti.testing.fake_providers",
    "shokti.testing.browser",
    "shokti.testing.celery_worker",
    "shokti.testing.webhook_receiver",
    "shokti.testing.embedded",
    "shokti.testing.reports_db",
    "shokti.testing.fast_flush",
]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """An empty cache around each test: policies, AI settings and zone lists are cached per company id."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a test client's request activates its Accept-Language for the
    thread (LocaleMiddleware) and nothing deactivates it, so a Bengali request would leak into the next test."""
    from django.utils import translation

    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Hashing the production way costs ~0.5 s a user; no test measures the hasher. Subprocesses
    # (the web server, Celery) keep the real hashers: users they log in are created in their own process.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def company(db):
    from crm.tests.factories import CompanyFactory

    return CompanyFactory(name="Alpha Home Services", slug="alpha")


@pytest.fixture
def other_company(db):
    from crm.tests.factories import CompanyFactory

    return CompanyFactory(name="Beta Courses", slug="beta")


@pytest.fixture
def staff_user(company):
    """Alice: operations staff of `company`."""
    from crm.models import Membership
    from crm.tests.factories import StaffUserFactory

    user = StaffUserFactory(email="alice@alpha.test", groups=["Operations"])
    Membership.objects.create(user=user, company=company, role=Membership.Role.OPERATIONS)
    return user


@pytest.fixture
def other_staff_user(other_company):
    """Bob: operations staff of `other_company`."""
    from crm.models import Membership
    from crm.tests.factories import StaffUserFactory

    user = StaffUserFactory(email="bob@beta.test", groups=["Operations"])
    Membership.objects.create(user=user, company=other_company, role=Membership.Role.OPERATIONS)
    return user


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def api_key(company):
    """(ApiKey, raw key) of `company`."""
    from crm.services import api_key_create

    return api_key_create(company=company, name="website")


@pytest.fixture
def key_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key[1]}")
    return client


@pytest.fixture
def jwt_client(staff_user):
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(staff_user).access_token}")
    return client
