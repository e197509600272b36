"""OTP login of customers and workers: email codes through django-otp's EmailDevice, JWTs from simplejwt.

Rules (docs/smartengage.md, "OTP login"):
- Who may log in: a non-staff person whose email is on a `Contact` that has the profile of the
  requested `user_type` (a `Customer` or a `Worker`). A contact already linked to a user wins;
  otherwise the oldest matching contact without a user. Staff never log in by OTP (they have
  passwords and their own token endpoint).
- The `User` is created on the first code request for such a contact (the django-otp device
  needs one), with an unusable password, and linked to the contact.
- django-otp keeps the token in plain text in `SideChannelDevice.token`; we store a keyed hash
  (HMAC-SHA256 with SECRET_KEY, bound to the device, truncated to the column's 16 hex
  characters) and verify by hashing the submitted code. The code itself is only in the email.
- 6 digits, valid OTP_EMAIL_TOKEN_VALIDITY seconds, single use (django-otp clears it), at most
  OTP_MAX_ATTEMPTS wrong tries per code (then it is void), at most OTP_MAX_CODES_PER_WINDOW codes
  per email per OTP_CODES_WINDOW_MINUTES (counted from `otp.requested` events under a row lock).
- Unknown emails get the same answers as known ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.plugins.otp_email.models import EmailDevice
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Company, Contact, Event, User
from crm.services import event_record

logger = logging.getLogger(__name__)

USER_TYPE_CUSTOMER = "customer"
USER_TYPE_WORKER = "worker"
USER_TYPES = (USER_TYPE_CUSTOMER, USER_TYPE_WORKER)
OTP_LENGTH = 6
DEVICE_NAME = "otp-login"
EVENT_OTP_REQUESTED = "otp.requested"
EVENT_LOGIN = "auth.login"


def duration_text(seconds: int) -> str:
    """A validity for people: "45 seconds", "1 minute", "10 minutes", "90 seconds" (never "0 minutes")."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def invalid_code_message() -> str:
    return (
        f"The code is wrong or has expired. A code works once, for {duration_text(settings.OTP_EMAIL_TOKEN_VALIDITY)},"
        f" and stops working after {settings.OTP_MAX_ATTEMPTS} wrong tries: request a new one."
    )


class OtpRateLimited(Exception):
    """Too many codes for this email in the window."""


class OtpDeliveryFailed(Exception):
    """The email with the code could not be sent."""


@dataclass(frozen=True)
class OtpLogin:
    user: User
    contact: Contact
    user_type: str
    access_token: str
    refresh_token: str


def _token_digest(*, device: EmailDevice, code: str) -> str:
    # A 6-digit code has only 10^6 values: an unkeyed hash would be reversed instantly, so the
    # hash is keyed with SECRET_KEY. 64 bits of HMAC fit django-otp's 16-character column.
    return salted_hmac("crm.auth.otp", f"{device.pk}:{code}", algorithm="sha256").hexdigest()[:16]


def email_normalize(*, email: str) -> str:
    return email.strip().lower()


def _has_profile(*, contact: Contact, user_type: str) -> bool:
    related = "customer" if user_type == USER_TYPE_CUSTOMER else "worker"
    return Contact.objects.filter(pk=contact.pk, **{f"{related}__isnull": False}).exists()


def otp_login_contact(*, email: str, user_type: str) -> Contact | None:
    """The contact an OTP login for `email` as `user_type` acts for, or None (unknown: same answers)."""
    if user_type not in USER_TYPES:
        raise ValidationError({"user_type": f"Must be one of {', '.join(USER_TYPES)}."})
    email = email_normalize(email=email)
    user = User.objects.filter(email=email).first()
    if user is not None and (user.is_staff or user.is_superuser or not user.is_active):
        return None
    contact = None
    if user is not None:
        contact = Contact.objects.select_related("company").filter(user=user).first()
    if contact is None:
        related = "customer" if user_type == USER_TYPE_CUSTOMER else "worker"
        contact = (
            Contact.objects.select_related("company")
            .filter(email__iexact=email, user__isnull=True, company__is_active=True, **{f"{related}__isnull": False})
            .order_by("id")
            .first()
        )
    if contact is None or not contact.company.is_active or not _has_profile(contact=contact, user_type=user_type):
        return None
    return contact


def _login_user_for(*, contact: Contact, email: str) -> User:
    """The contact's user, created and linked on first use. Call inside a transaction."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.user_id is not None:
        return User.objects.select_for_update().get(pk=contact.user_id)
    user = User.objects.select_for_update().filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, full_name=contact.name)
    contact.user = user
    contact.save(update_fields=["user", "updated_at"])
    return user


def otp_request(*, email: str, user_type: str = USER_TYPE_CUSTOMER, source: str = "api") -> None:
    """Email a login code if `email` may log in as `user_type`; silently nothing otherwise."""
    email = email_normalize(email=email)
    contact = otp_login_contact(email=email, user_type=user_type)
    if contact is None:
        logger.info("otp requested for an email that cannot log in as %s", user_type)
        return
    validity_seconds = settings.OTP_EMAIL_TOKEN_VALIDITY
    try:
        with transaction.atomic():
            user = _login_user_for(contact=contact, email=email)
            window_start = timezone.now() - timedelta(minutes=settings.OTP_CODES_WINDOW_MINUTES)
            issued = Event.objects.filter(
                contact=contact, type=EVENT_OTP_REQUESTED, occurred_at__gte=window_start
            ).count()
            if issued >= settings.OTP_MAX_CODES_PER_WINDOW:
                raise OtpRateLimited()
            device = EmailDevice.objects.filter(user=user, name=DEVICE_NAME).first()
            if device is None:
                device = EmailDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=True)
            device.generate_token(length=OTP_LENGTH, valid_secs=validity_seconds, commit=False)
            code = device.token
            device.token = _token_digest(device=device, code=code)
            device.throttle_reset(commit=False)
            device.cooldown_set(commit=False)
            device.save()
            event_record(
                company=contact.company,
                type=EVENT_OTP_REQUESTED,
                contact=contact,
                actor=user,
                source=source,
                payload={"user_type": user_type},
            )
            # Sent inside the transaction: if the mail cannot go out, no code is stored or counted.
            send_mail(
                subject="Your Shokti login code",
                message=(
                    f"আপনার লগইন কোড: {code}\n"
                    f"Your login code is {code}. It works once, for {duration_text(validity_seconds)}.\n"
                    "If you did not ask for it, ignore this email."
                ),
                from_email=None,
                recipient_list=[email],
            )
    except (OSError, ConnectionError) as error:
        logger.warning("otp email to contact %s failed: %s", contact.pk, error)
        raise OtpDeliveryFailed() from error


def _code_check(*, device_pk: int, code: str) -> bool:
    """Check `code` against the device; a wrong try counts, and the 5th wrong one voids the code."""
    with transaction.atomic():
        device = EmailDevice.objects.select_for_update().get(pk=device_pk)
        if device.token is None:
            return False
        if device.verify_token(_token_digest(device=device, code=code)):
            return True
        if device.throttling_failure_count >= settings.OTP_MAX_ATTEMPTS:
            device.token = None
            device.save(update_fields=["token"])
        return False


def otp_verify(*, email: str, code: str, user_type: str = USER_TYPE_CUSTOMER, source: str = "api") -> OtpLogin:
    """Check a login code; on success the user, their contact and a fresh JWT pair. ValidationError otherwise."""
    email = email_normalize(email=email)
    contact = otp_login_contact(email=email, user_type=user_type)
    device = None
    if contact is not None and contact.user_id is not None:
        device = EmailDevice.objects.filter(user_id=contact.user_id, name=DEVICE_NAME).only("pk").first()
    if device is None or not _code_check(device_pk=device.pk, code=code):
        raise ValidationError({"code": invalid_code_message()})
    assert contact is not None
    user = User.objects.get(pk=contact.user_id)
    refresh = token_pair_for(user=user, user_type=user_type, contact=contact)
    event_record(
        company=contact.company, type=EVENT_LOGIN, contact=contact, actor=user, source=source,
        payload={"user_type": user_type, "method": "otp_email"},
    )
    return OtpLogin(
        user=user, contact=contact, user_type=user_type,
        access_token=str(refresh.access_token), refresh_token=str(refresh),
    )


def token_pair_for(*, user: User, user_type: str, contact: Contact | None = None) -> RefreshToken:
    """A refresh token (registered for the blacklist) whose access token carries `user_type` and the company."""
    refresh = RefreshToken.for_user(user)
    refresh["user_type"] = user_type
    if contact is not None:
        refresh["company_id"] = contact.company_id
    return refresh


def login_user_describe(*, user: User, contact: Contact, user_type: str) -> dict[str, Any]:
    """The `user` object of a login answer."""
    profile_id = None
    if user_type == USER_TYPE_CUSTOMER:
        profile_id = getattr(getattr(contact, "customer", None), "pk", None)
    else:
        profile_id = getattr(getattr(contact, "worker", None), "pk", None)
    return {
        "id": user.pk,
        "email": user.email,
        "name": contact.name or user.full_name,
        "user_type": user_type,
        "contact_id": contact.pk,
        "company_id": contact.company_id,
        f"{user_type}_id": profile_id,
        "locale": contact.locale,
        "timezone": contact.timezone,
    }


def app_user_contact(*, user: Any) -> Contact | None:
    """The contact (with its company) of a logged-in customer or worker of an active company, or None
    (no contact linked to the login, or its company deactivated)."""
    if user is None or not getattr(user, "is_authenticated", False) or not isinstance(user, User):
        return None
    contact = Contact.objects.select_related("company").filter(user=user).first()
    if contact is None or not contact.company.is_active:
        return None
    return contact


def app_user_company(*, user: Any) -> Company | None:
    """The company a logged-in customer or worker belongs to (through their contact), or None."""
    contact = app_user_contact(user=user)
    return contact.company if contact is not None else None
