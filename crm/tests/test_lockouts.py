"""Login lockouts (django-axes) on both password logins, per account and per client IP, and their admin.

The 6th wrong password locks (LOGIN_FAILURE_LIMIT = 6) for LOGIN_LOCKOUT_MINUTES; a spoofed
X-Forwarded-For moves nothing; only superusers see and clear lockouts.
"""

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from crm.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # the factories'
TOKEN_URL = "/api/token/"
ADMIN_LOGIN = "/admin/login/"


def token(client, email="alice@alpha.test", password="wrong", **extra):
    return client.post(TOKEN_URL, {"email": email, "password": password}, format="json", **extra)


def admin_login(client, email="alice@alpha.test", password="wrong", **extra):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"}, **extra)


def test_the_sixth_wrong_password_on_the_token_api_locks_the_account(staff_user):
    client = APIClient()

    first_five = [token(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(5)]
    sixth = token(client, HTTP_X_FORWARDED_FOR="198.51.100.99")
    right = token(client, password=PASSWORD)

    assert [response.status_code for response in first_five] == [401] * 5
    assert {response.json()["error"]["code"] for response in first_five} == {"no_active_account"}
    for locked in (sixth, right):
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        assert locked.json()["error"] == {
            "code": "locked_out",
            "message": "Too many failed logins: this account or address is locked for a while. "
            "Expected available in 900 seconds.",
            "fields": {},
            "retry_after_seconds": 900,
        }
    assert "access" not in right.json()


def test_the_account_is_locked_from_every_address_and_however_its_email_is_written(staff_user):
    for n in range(6):
        token(APIClient(REMOTE_ADDR=f"203.0.113.{n}"), email="Alice@Alpha.TEST" if n % 2 else "alice@alpha.test")

    assert token(APIClient(REMOTE_ADDR="192.0.2.50"), password=PASSWORD).status_code == 429


def test_one_address_trying_many_accounts_is_locked_but_others_are_not(staff_user, company):
    attacker = APIClient(REMOTE_ADDR="203.0.113.66")
    statuses = [token(attacker, email=f"guess{n}@alpha.test").status_code for n in range(6)]

    assert statuses == [401] * 5 + [429]
    assert token(attacker, password=PASSWORD).status_code == 429  # this address is locked, whoever it tries
    assert token(APIClient(REMOTE_ADDR="192.0.2.7"), password=PASSWORD).status_code == 200


def test_below_the_limit_the_right_password_still_works(staff_user):
    client = APIClient()
    for _ in range(5):
        token(client)

    assert token(client, password=PASSWORD).status_code == 200


def test_the_sixth_wrong_password_on_the_admin_login_locks_it_too(staff_user):
    client = Client()

    first_five = [admin_login(client, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}") for n in range(5)]
    sixth = admin_login(client)
    right = admin_login(client, password=PASSWORD)

    assert [response.status_code for response in first_five] == [200] * 5  # the form again, with its error
    for locked in (sixth, right):
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_on_one_login_path_count_on_the_other(staff_user):
    for _ in range(3):
        admin_login(Client())
    for _ in range(3):
        token(APIClient())

    assert token(APIClient(), password=PASSWORD).status_code == 429


def test_behind_a_proxy_the_lockout_follows_the_address_it_saw(settings, staff_user):
    settings.NUM_PROXIES = 1
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")
    for n in range(6):
        token(proxy, email=f"guess{n}@alpha.test", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.9")

    assert AccessAttempt.objects.filter(ip_address="203.0.113.9").exists()
    assert token(proxy, password=PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert token(proxy, password=PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 200


# --- the admin's view of lockouts ----------------------------------------------------------------------


@pytest.fixture
def superuser(db):
    return StaffUserFactory(email="root@shokti.test", is_superuser=True)


LOCKOUTS = "/admin/axes/accessattempt/"


def test_a_superuser_sees_lockouts_and_unlocks_an_account(staff_user, superuser):
    for _ in range(6):
        token(APIClient(REMOTE_ADDR="203.0.113.5"))
    root = Client()
    root.force_login(superuser)

    listed = root.get(LOCKOUTS, {"locked": "yes"})
    assert listed.status_code == 200
    assert "alice@alpha.test" in listed.content.decode()
    attempt = AccessAttempt.objects.get(username="alice@alpha.test")

    response = root.post(LOCKOUTS, {"action": "unlock", "_selected_action": [attempt.pk]}, follow=True)

    assert response.status_code == 200
    assert "Unlocked" in response.content.decode()
    assert not AccessAttempt.objects.exists()
    assert token(APIClient(REMOTE_ADDR="203.0.113.5"), password=PASSWORD).status_code == 200


def test_staff_without_superuser_and_anonymous_callers_cannot_see_or_clear_lockouts(staff_user, other_staff_user):
    for _ in range(6):
        token(APIClient())
    alice = Client()
    alice.force_login(staff_user)
    attempt = AccessAttempt.objects.get()

    assert alice.get(LOCKOUTS).status_code == 403
    assert alice.post(LOCKOUTS, {"action": "unlock", "_selected_action": [attempt.pk]}).status_code == 403
    assert "accessattempt" not in alice.get("/admin/").content.decode()
    bob = Client()
    bob.force_login(other_staff_user)
    assert bob.get(LOCKOUTS).status_code == 403
    anonymous = Client().get(LOCKOUTS)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert AccessAttempt.objects.count() == 1
