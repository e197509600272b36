"""Signed, expiring deep links into the booking flow.

A token is `django.core.signing` (HMAC-SHA256 with SECRET_KEY and its own salt) over a small JSON
payload: company, customer, optional service, optional promo code, type (booking/promo), expiry
(unix seconds) and the correlation id of the message that carried it. Tokens of other signers
(other salts) fail as tampered; the expiry is in the payload because every link has its own ttl.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Company, Customer, Service
from engage.campaigns.models import ShortLink

SALT = "engage.campaigns.deeplinks.v1"
TYPE_BOOKING = "booking"
TYPE_PROMO = "promo"
TYPES = (TYPE_BOOKING, TYPE_PROMO)
MAX_TTL_HOURS = 24 * 90
PROMO_CODE_MAX_LENGTH = 40


class DeepLinkInvalid(Exception):
    """A token that must not be honoured; `reason` is malformed, tampered, expired or wrong_type."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class DeepLinkClaims:
    company_id: int
    customer_id: int
    service_id: int | None
    promo_code: str
    type: str
    expires_at: dt.datetime
    correlation_id: str | None

    def as_dict(self) -> dict:
        return {
            "company_id": self.company_id,
            "customer_id": self.customer_id,
            "service_id": self.service_id,
            "promo_code": self.promo_code,
            "type": self.type,
            "expires_at": self.expires_at.isoformat(),
            "correlation_id": self.correlation_id,
        }


def deeplink_token_create(
    *,
    customer: Customer,
    link_type: str = TYPE_BOOKING,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    correlation_id: uuid.UUID | str | None = None,
) -> str:
    """A signed token for `customer` that expires after `ttl_hours` (DEEP_LINK_TTL_HOURS by default)."""
    if link_type not in TYPES:
        raise ValueError(f"link_type must be one of {TYPES}")
    ttl_hours = settings.DEEP_LINK_TTL_HOURS if ttl_hours is None else ttl_hours
    if not 0 < ttl_hours <= MAX_TTL_HOURS:
        raise ValueError(f"ttl_hours must be between 1 and {MAX_TTL_HOURS}")
    if service is not None and service.company_id != customer.company_id:
        raise ValueError("The service belongs to another company.")
    if link_type == TYPE_PROMO and not promo_code:
        raise ValueError("A promo link needs a promo code.")
    if len(promo_code) > PROMO_CODE_MAX_LENGTH:
        raise ValueError(f"A promo code has at most {PROMO_CODE_MAX_LENGTH} characters.")
    expires_at = timezone.now() + dt.timedelta(hours=ttl_hours)
    payload = {
        "co": customer.company_id,
        "c": customer.pk,
        "t": link_type,
        "e": int(expires_at.timestamp()),
    }
    if service is not None:
        payload["s"] = service.pk
    if promo_code:
        payload["p"] = promo_code
    if correlation_id:
        payload["r"] = str(correlation_id)
    # Not compressed: zlib made a ~180-character token at most a few characters shorter, for a third
    # of the signing time (compressed tokens signed before still verify).
    return _signed(payload)


def _signed(payload: dict) -> str:
    """`signing.dumps(payload, salt=SALT)`, the same token to the byte, with its HMAC key derived once per
    SECRET_KEY: Django derives it (salted_hmac) and builds its signer for every token, ~60 % of a token's
    CPU, and a campaign signs one per customer."""
    data = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode("latin-1")).rstrip(b"=")
    value = f"{data.decode()}:{signing.b62_encode(int(time.time()))}"
    mac = _hmac_for(settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return f"{value}:{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


@functools.lru_cache(maxsize=4)
def _hmac_for(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 keyed as Django's TimestampSigner keys it: sha256(salt + "signer" + secret)."""
    return hmac.new(hashlib.sha256(f"{SALT}signer{secret}".encode()).digest(), digestmod=hashlib.sha256)


def deeplink_url(
    *,
    token: str,
    utm_source: str = "shokti",
    utm_medium: str = "message",
    utm_campaign: str = "smartengage_reminder",
) -> str:
    """The link on DEEP_LINK_BASE_URL with the token and UTM parameters."""
    # A signed token is URL-safe base64 and ':' (allowed in a query): it goes in as it is. Only the
    # rest is encoded, once per base URL and UTM set: urlencode() of the token was 0.1 ms a link.
    if not _TOKEN_SAFE.fullmatch(token):
        raise ValueError("Not a signed token.")
    prefix, suffix = _url_parts(settings.DEEP_LINK_BASE_URL, utm_source, utm_medium, utm_campaign)
    return f"{prefix}{token}{suffix}"


_TOKEN_SAFE = re.compile(r"[A-Za-z0-9_\-:.]+")


@functools.lru_cache(maxsize=64)
def _url_parts(base_url: str, utm_source: str, utm_medium: str, utm_campaign: str) -> tuple[str, str]:
    base = urlsplit(base_url)
    utm = urlencode({"utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign})
    query = f"{base.query}&token=" if base.query else "token="
    return urlunsplit((base.scheme, base.netloc, base.path, query, "")), f"&{utm}"


def deeplink_booking_create(
    *,
    customer: Customer,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    correlation_id: uuid.UUID | str | None = None,
    utm_medium: str = "message",
    utm_campaign: str = "smartengage_reminder",
) -> str:
    """A booking link (service pre-selected when given), ready to put in a message."""
    token = deeplink_token_create(
        customer=customer, link_type=TYPE_BOOKING, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, correlation_id=correlation_id,
    )
    return deeplink_url(token=token, utm_source="smartengage", utm_medium=utm_medium, utm_campaign=utm_campaign)


def deeplink_promo_create(
    *,
    customer: Customer,
    promo_code: str,
    service: Service | None = None,
    ttl_hours: int | None = None,
    correlation_id: uuid.UUID | str | None = None,
    utm_medium: str = "message",
    utm_campaign: str = "smartengage_promo",
) -> str:
    """A promo link, for any service unless one is given."""
    token = deeplink_token_create(
        customer=customer, link_type=TYPE_PROMO, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, correlation_id=correlation_id,
    )
    return deeplink_url(token=token, utm_source="smartengage", utm_medium=utm_medium, utm_campaign=utm_campaign)


def deeplink_verify(*, token: str, allowed_types: tuple[str, ...] = TYPES) -> DeepLinkClaims:
    """The claims of a valid token; DeepLinkInvalid when it is malformed, tampered, expired or of another type."""
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise DeepLinkInvalid("malformed", "The link token is missing or malformed.")
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        raise DeepLinkInvalid("tampered", "The link is not valid.") from None
    except (ValueError, TypeError, UnicodeDecodeError):
        raise DeepLinkInvalid("malformed", "The link token is missing or malformed.") from None
    try:
        claims = DeepLinkClaims(
            company_id=int(payload["co"]),
            customer_id=int(payload["c"]),
            service_id=int(payload["s"]) if payload.get("s") is not None else None,
            promo_code=str(payload.get("p", "")),
            type=str(payload["t"]),
            expires_at=dt.datetime.fromtimestamp(int(payload["e"]), tz=dt.UTC),
            correlation_id=str(payload["r"]) if payload.get("r") else None,
        )
    except (KeyError, TypeError, ValueError):
        raise DeepLinkInvalid("malformed", "The link token is missing or malformed.") from None
    if claims.type not in allowed_types:
        raise DeepLinkInvalid("wrong_type", "This link cannot be used here.")
    if claims.expires_at <= timezone.now():
        raise DeepLinkInvalid("expired", "The link has expired.")
    return claims


# --- Short links (engage.campaigns.models) --------------------------------------------------------------

SHORT_CODE_LENGTH = 9  # 62**9 codes: guessing one that exists is hopeless, and it grants nothing anyway
_CODE_ALPHABET = string.ascii_letters + string.digits


def _short_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


def short_url(*, code: str) -> str:
    return f"{settings.SHORT_LINK_BASE_URL.rstrip('/')}/{code}"


def short_links_create(
    *,
    company: Company,
    links: list[tuple[str, uuid.UUID | str | None]],
    ttl_hours: int | None = None,
    save: bool = True,
) -> list[str]:
    """Short URLs for `links` ((signed link, correlation id) pairs), in their order: one INSERT for all.

    `save=False` (a dry run) makes the URLs without rows: the text has its real length, the codes
    resolve to nothing. A code collision (one in 10**16 per pair) makes the whole batch again.
    """

    if not links:
        return []
    ttl_hours = settings.DEEP_LINK_TTL_HOURS if ttl_hours is None else ttl_hours
    expires_at = timezone.now() + dt.timedelta(hours=ttl_hours)
    for attempt in range(3):
        rows = [
            ShortLink(company=company, code=_short_code(), target_url=url, correlation_id=correlation_id,
                      expires_at=expires_at)
            for url, correlation_id in links
        ]
        if not save:
            break
        try:
            with transaction.atomic():
                ShortLink.objects.bulk_create(rows)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return [short_url(code=row.code) for row in rows]


def short_link_target(*, code: str) -> str:
    """The signed link behind `code`; DeepLinkInvalid `malformed` when unknown, `expired` after its expiry."""

    link = ShortLink.objects.filter(code=code).only("target_url", "expires_at").first() if code else None
    if link is None:
        raise DeepLinkInvalid("malformed", "The link is not valid.")
    if link.expires_at <= timezone.now():
        raise DeepLinkInvalid("expired", "The link has expired.")
    return link.target_url


def short_links_purge(*, older_than_days: int = 30) -> int:
    """Delete short links that expired more than `older_than_days` ago (the beat task, daily)."""

    deleted, _ = ShortLink.objects.filter(expires_at__lt=timezone.now() - dt.timedelta(days=older_than_days)).delete()
    return deleted
