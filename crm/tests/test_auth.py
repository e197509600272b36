"""OTP login (POST /auth/request-otp, /auth/verify-otp), JWT rules and refresh rotation (/auth/refresh)."""

import datetime as dt
import re

import jwt
import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django_otp.plugins.otp_email.models import EmailDevice
from rest_framework.test import APIClient

from crm.auth import DEVICE_NAME, OtpRateLimited, otp_request, token_pair_for
from crm.models import Event, User
from crm.tests.factories import (
    ContactFactory,
    CustomerFactory,
    ServiceFactory,
    WorkerFactory,
)

REQUEST_URL = "/auth/request-otp"
VERIFY_URL = "/auth/verify-otp"
REFRESH_URL = "/auth/refresh"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Throttle windows live in the cache (this run's own Redis db): start every test clean.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def customer(company):
    return CustomerFactory(company=company, contact__email="fatima@example.test", contact__name="Fatima")


@pytest.fixture
def client():
    return APIClient()


def code_from(mail) -> str:
    match = re.search(r"\b(\d{6})\b", mail.body)
    assert match, mail.body
    return match.group(1)


def request_code(client, email="fatima@example.test", **extra):
    return client.post(REQUEST_URL, {"email": email, **extra}, format="json")


def verify(client, code, email="fatima@example.test", **extra):
    return client.post(VERIFY_URL, {"email": email, "code": code, **extra}, format="json")


def device_of(email):
    return EmailDevice.objects.get(user__email=email, name=DEVICE_NAME)


# --- request-otp --------------------------------------------------------------------------------


def test_request_otp_emails_a_code_and_stores_only_its_hash(client, customer, mailoutbox):
    response = request_code(client)

    assert response.status_code == 200
    assert response.json() == {"status": "sent", "message": "If this email belongs to an account, a login code is on its way."}
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["fatima@example.test"]
    code = code_from(mailoutbox[0])
    device = device_of("fatima@example.test")
    assert device.token not in (None, code)
    assert len(device.token) == 16
    assert code not in device.token
    validity = (device.valid_until - timezone.now()).total_seconds()
    assert 590 < validity <= 600
    customer.contact.refresh_from_db()
    assert customer.contact.user.email == "fatima@example.test"
    assert not customer.contact.user.has_usable_password()
    assert Event.objects.filter(type="otp.requested", contact=customer.contact).count() == 1


def test_request_otp_answers_unknown_and_staff_emails_the_same_and_sends_nothing(client, customer, staff_user, mailoutbox):
    known = request_code(client)
    unknown = request_code(client, email="nobody@example.test")
    staff = request_code(client, email=staff_user.email)
    # A contact without the requested profile: a customer asking to log in as a worker.
    wrong_profile = request_code(client, email="fatima@example.test", user_type="worker")

    assert known.status_code == unknown.status_code == staff.status_code == wrong_profile.status_code == 200
    assert known.json() == unknown.json() == staff.json() == wrong_profile.json()
    assert len(mailoutbox) == 1
    assert not User.objects.filter(email="nobody@example.test").exists()
    assert not EmailDevice.objects.filter(user=staff_user).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({}, "email"),
        ({"email": "fatima@example.test", "user_type": "admin"}, "user_type"),
    ],
)
def test_request_otp_rejects_bad_input(client, customer, mailoutbox, body, field):
    response = client.post(REQUEST_URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert field in response.json()["error"]["fields"]
    assert mailoutbox == []
    assert not EmailDevice.objects.exists()


def test_at_most_three_codes_per_email_per_window_for_known_and_unknown_alike(client, customer, mailoutbox):
    known = [request_code(client).status_code for _ in range(4)]
    unknown = [request_code(client, email="ghost@example.test").status_code for _ in range(4)]

    assert known == unknown == [200, 200, 200, 429]
    assert len(mailoutbox) == 3
    assert Event.objects.filter(type="otp.requested").count() == 3


def test_the_service_itself_refuses_a_fourth_code_in_the_window(customer, mailoutbox):
    # The throttle is per request; the service counts issued codes under a row lock.
    for _ in range(3):
        otp_request(email="fatima@example.test", user_type="customer")
    with pytest.raises(OtpRateLimited):
        otp_request(email="Fatima@Example.test", user_type="customer")
    assert len(mailoutbox) == 3
    # Outside the window the count starts again.
    Event.objects.filter(type="otp.requested").update(occurred_at=timezone.now() - dt.timedelta(minutes=16))
    otp_request(email="fatima@example.test", user_type="customer")
    assert len(mailoutbox) == 4


def test_request_otp_is_throttled_per_ip(client, company, settings, mailoutbox):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_request_ip": "2/m"},
    }
    statuses = [request_code(client, email=f"person{n}@example.test").status_code for n in range(3)]
    other_ip = APIClient(REMOTE_ADDR="10.0.0.9")

    assert statuses == [200, 200, 429]
    assert request_code(other_ip, email="person9@example.test").status_code == 200


# --- verify-otp ---------------------------------------------------------------------------------


def test_verify_otp_answers_jwt_pair_and_the_user(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])

    response = verify(client, code)

    assert response.status_code == 200, response.json()
    body = response.json()
    user = User.objects.get(email="fatima@example.test")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    assert body["user"] == {
        "id": user.pk,
        "email": "fatima@example.test",
        "name": "Fatima",
        "user_type": "customer",
        "contact_id": customer.contact.pk,
        "company_id": customer.company.pk,
        "customer_id": customer.pk,
        "locale": "bn",
        "timezone": "Asia/Dhaka",
    }
    claims = jwt.decode(body["access_token"], settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    assert claims["token_type"] == "access"
    assert claims["user_id"] == str(user.pk)
    assert claims["user_type"] == "customer"
    assert claims["company_id"] == customer.company.pk
    # The access token opens the app API.
    ServiceFactory(company=customer.company, name="Deep cleaning")
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert [service["name"] for service in app.get("/services").json()] == ["Deep cleaning"]
    assert Event.objects.filter(type="auth.login", contact=customer.contact, actor=user).count() == 1


def test_worker_logs_in_as_worker(client, company, mailoutbox):
    worker = WorkerFactory(company=company, contact__email="rahim@example.test")
    request_code(client, email="rahim@example.test", user_type="worker")

    response = verify(client, code_from(mailoutbox[0]), email="rahim@example.test", user_type="worker")

    assert response.status_code == 200
    assert response.json()["user"]["worker_id"] == worker.pk
    assert response.json()["user"]["user_type"] == "worker"


def test_a_code_works_once(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])

    assert verify(client, code).status_code == 200
    second = verify(client, code)

    assert second.status_code == 400
    assert second.json()["error"]["fields"] == {"code": [second.json()["error"]["message"]]}


def test_wrong_expired_unknown_all_answer_the_same_400(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])
    wrong_code = "000000" if code != "000000" else "111111"

    wrong = verify(client, wrong_code)
    unknown = verify(client, code, email="nobody@example.test")
    EmailDevice.objects.filter(pk=device_of("fatima@example.test").pk).update(
        valid_until=timezone.now() - dt.timedelta(seconds=1)
    )
    expired = verify(client, code)

    assert wrong.status_code == unknown.status_code == expired.status_code == 400
    assert wrong.json() == unknown.json() == expired.json()
    assert wrong.json()["error"]["code"] == "invalid_code"
    assert "expired" in wrong.json()["error"]["message"]
    assert not Event.objects.filter(type="auth.login").exists()


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", ""])
def test_malformed_code_is_400_without_counting_a_try(client, customer, mailoutbox, code):
    request_code(client)

    response = verify(client, code)

    assert response.status_code == 400
    assert "code" in response.json()["error"]["fields"]
    assert device_of("fatima@example.test").throttling_failure_count == 0


def test_the_sixth_attempt_fails_even_with_the_right_code(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])
    wrong_code = "000000" if code != "000000" else "111111"

    for _ in range(5):
        assert verify(client, wrong_code).status_code == 400
    sixth = verify(client, code)

    assert sixth.status_code == 400
    assert device_of("fatima@example.test").token is None
    # A new code works again.
    request_code(client)
    assert verify(client, code_from(mailoutbox[1])).status_code == 200


def test_a_new_code_replaces_the_previous_one(client, customer, mailoutbox):
    request_code(client)
    request_code(client)
    first, second = code_from(mailoutbox[0]), code_from(mailoutbox[1])

    if first != second:  # one chance in a million that two random codes are equal
        assert verify(client, first).status_code == 400
    assert verify(client, second).status_code == 200


def test_verify_is_throttled_per_email(client, customer, settings, mailoutbox):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_verify_email": "3/15m"},
    }
    statuses = [verify(APIClient(REMOTE_ADDR=f"10.0.0.{n}"), "000000").status_code for n in range(4)]

    assert statuses == [400, 400, 400, 429]
    assert verify(client, "000000", email="other@example.test").status_code == 400


def test_the_first_login_links_an_existing_contact_and_keeps_it(client, company, other_company, mailoutbox):
    # The same email in two companies: the oldest contact with the profile is the login's.
    first = CustomerFactory(company=company, contact__email="twin@example.test")
    CustomerFactory(company=other_company, contact__email="twin@example.test")
    request_code(client, email="twin@example.test")

    response = verify(client, code_from(mailoutbox[0]), email="twin@example.test")

    assert response.json()["user"]["company_id"] == company.pk
    first.contact.refresh_from_db()
    assert first.contact.user.email == "twin@example.test"


# --- JWT rules and refresh ----------------------------------------------------------------------


@pytest.fixture
def customer_tokens(customer):
    user = User.objects.create_user(email="fatima@example.test")
    customer.contact.user = user
    customer.contact.save()
    return token_pair_for(user=user, user_type="customer", contact=customer.contact)


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_refresh_rotates_and_blacklists_the_old_refresh_token(client, customer_tokens):
    old_refresh = str(customer_tokens)

    rotated = client.post(REFRESH_URL, {"refresh_token": old_refresh}, format="json")

    assert rotated.status_code == 200
    body = rotated.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["refresh_token"] != old_refresh
    assert bearer(body["access_token"]).get("/services").status_code == 200
    claims = jwt.decode(body["access_token"], settings.SIMPLE_JWT["SIGNING_KEY"], algorithms=["HS256"])
    assert claims["user_type"] == "customer"
    reused = client.post(REFRESH_URL, {"refresh_token": old_refresh}, format="json")
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "not_authenticated"
    assert client.post(REFRESH_URL, {"refresh_token": body["refresh_token"]}, format="json").status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh_token": "garbage"}, {"refresh_token": ""}])
def test_refresh_rejects_bad_input(db, client, body):
    response = client.post(REFRESH_URL, body, format="json")

    assert response.status_code in (400, 401)
    assert "error" in response.json()


def test_a_refresh_token_is_not_an_access_token(customer_tokens):
    response = bearer(str(customer_tokens)).get("/services")

    assert response.status_code == 401


def _forge(claims: dict, *, key: str, algorithm: str) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def test_only_hs256_tokens_are_accepted(customer_tokens):
    claims = dict(customer_tokens.access_token.payload)
    key = settings.SIMPLE_JWT["SIGNING_KEY"]

    hs512 = _forge(claims, key=key, algorithm="HS512")
    unsigned = jwt.encode(claims, None, algorithm="none")
    wrong_key = _forge(claims, key="not-the-key-" * 4, algorithm="HS256")
    good = _forge(claims, key=key, algorithm="HS256")

    assert bearer(hs512).get("/services").status_code == 401
    assert bearer(unsigned).get("/services").status_code == 401
    assert bearer(wrong_key).get("/services").status_code == 401
    assert bearer(good).get("/services").status_code == 200


def test_expired_access_token_is_401(customer_tokens):
    claims = dict(customer_tokens.access_token.payload)
    claims["exp"] = int((timezone.now() - dt.timedelta(seconds=5)).timestamp())
    expired = _forge(claims, key=settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")

    assert bearer(expired).get("/services").status_code == 401


def test_access_lifetime_comes_from_settings(customer_tokens):
    access = customer_tokens.access_token
    lifetime = access["exp"] - access["iat"]

    assert lifetime == settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()


def test_contact_without_email_match_cannot_be_guessed(client, company, mailoutbox):
    # A contact whose email differs only in case still logs in: emails are case-insensitive.
    ContactFactory(company=company, email="Case@Example.test")
    CustomerFactory(company=company, contact__email="Mixed@Example.test")

    response = request_code(client, email="mixed@example.TEST")

    assert response.status_code == 200
    assert len(mailoutbox) == 1


# --- audit additions: the limits' edges, per-IP verify throttle, token types, racing refreshes ---


def test_the_fifth_try_still_works_when_it_is_the_right_code(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])
    wrong_code = "000000" if code != "000000" else "111111"

    for _ in range(4):
        assert verify(client, wrong_code).status_code == 400
    fifth = verify(client, code)

    assert fifth.status_code == 200
    # and it is spent: single use
    assert verify(client, code).status_code == 400


def test_a_code_is_issued_for_ten_minutes_and_works_until_its_end(client, customer, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])
    device = device_of("fatima@example.test")
    issued_for = (device.valid_until - timezone.now()).total_seconds()
    assert 590 < issued_for <= settings.OTP_EMAIL_TOKEN_VALIDITY == 600

    # ten seconds before its end it still works (after its end: test_wrong_expired_unknown_all_answer_the_same_400)
    EmailDevice.objects.filter(pk=device.pk).update(valid_until=timezone.now() + dt.timedelta(seconds=10))
    assert verify(client, code).status_code == 200


def test_verify_is_throttled_per_ip_across_emails(client, customer, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "otp_verify_ip": "3/h"},
    }
    statuses = [verify(client, "000000", email=f"person{n}@example.test").status_code for n in range(4)]

    assert statuses == [400, 400, 400, 429]
    assert verify(APIClient(REMOTE_ADDR="10.0.0.77"), "000000").status_code == 400


@pytest.mark.parametrize("email", ["not-an-email", "", "a@", None])
def test_verify_with_a_malformed_email_is_400_on_the_email_field(client, customer, email):
    response = client.post(VERIFY_URL, {"email": email, "code": "123456"}, format="json")

    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]


def test_staff_and_inactive_users_cannot_log_in_by_otp_and_are_told_the_same(client, customer, staff_user, mailoutbox):
    request_code(client)
    code = code_from(mailoutbox[0])
    User.objects.filter(email="fatima@example.test").update(is_active=False)

    inactive = verify(client, code)
    staff = verify(client, code, email=staff_user.email)
    unknown = verify(client, code, email="nobody@example.test")

    assert inactive.status_code == staff.status_code == unknown.status_code == 400
    assert inactive.json() == staff.json() == unknown.json()


def test_an_access_token_is_not_a_refresh_token(client, customer_tokens):
    response = client.post(REFRESH_URL, {"refresh_token": str(customer_tokens.access_token)}, format="json")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_refresh_token_signed_with_another_algorithm_is_refused(client, customer_tokens):
    claims = dict(customer_tokens.payload)
    forged = _forge(claims, key=settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")

    assert client.post(REFRESH_URL, {"refresh_token": forged}, format="json").status_code == 401
    # the genuine one still rotates: the forged try blacklisted nothing
    assert client.post(REFRESH_URL, {"refresh_token": str(customer_tokens)}, format="json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_of_one_token_at_once_rotate_it_once(company):
    import threading

    from django.db import connection

    customer = CustomerFactory(company=company, contact__email="race@example.test")
    user = User.objects.create_user(email="race@example.test")
    customer.contact.user = user
    customer.contact.save()
    raw = str(token_pair_for(user=user, user_type="customer", contact=customer.contact))
    barrier = threading.Barrier(4)
    statuses = []

    def refresh():
        try:
            barrier.wait()
            statuses.append(APIClient().post(REFRESH_URL, {"refresh_token": raw}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 401, 401, 401]


@pytest.mark.parametrize(("seconds", "text"), [(45, "45 seconds"), (60, "1 minute"), (600, "10 minutes"), (90, "90 seconds")])
def test_the_code_email_states_its_validity_in_seconds_under_a_minute(client, customer, mailoutbox, settings,
                                                                      seconds, text):
    settings.OTP_EMAIL_TOKEN_VALIDITY = seconds

    request_code(client)

    assert f"It works once, for {text}." in mailoutbox[0].body
    assert "for 0 minutes" not in mailoutbox[0].body
