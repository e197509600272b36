"""Signed links of emails: open pixel, click-through and unsubscribe (django.core.signing).

The token carries who and what (company, message, correlation id, contact, and for clicks the
target URL), so a click can only ever redirect to the URL we signed: no open redirect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

OPEN_SALT = "channels.email.open"
CLICK_SALT = "channels.email.click"
UNSUBSCRIBE_SALT = "channels.email.unsubscribe"


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _claims(
    *,
    company_id: int,
    message_id: int | None,
    correlation_id: Any,
    contact_id: int | None,
    email: str,
    agent_type: str = "",
) -> dict[str, Any]:
    return {
        "a": agent_type,
        "c": company_id,
        "m": message_id,
        "r": str(correlation_id) if correlation_id else None,
        "k": contact_id,
        "e": email,
    }


def is_trackable_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def open_url(**claims: Any) -> str:
    token = signing.dumps(_claims(**claims), salt=OPEN_SALT, compress=True)
    return _absolute(reverse("channels:email-open", kwargs={"token": token}))


def click_url(*, url: str, **claims: Any) -> str:
    token = signing.dumps({**_claims(**claims), "u": url}, salt=CLICK_SALT, compress=True)
    return _absolute(reverse("channels:email-click", kwargs={"token": token}))


def unsubscribe_url(**claims: Any) -> str:
    token = signing.dumps(_claims(**claims), salt=UNSUBSCRIBE_SALT, compress=True)
    return _absolute(reverse("channels:email-unsubscribe", kwargs={"token": token}))


def token_read(token: str, *, salt: str, max_age_days: int | None = None) -> dict[str, Any]:
    """The claims of a token; raises signing.BadSignature when tampered with or expired."""
    max_age = max_age_days * 86400 if max_age_days else None
    claims = signing.loads(token, salt=salt, max_age=max_age)
    if not isinstance(claims, dict) or not isinstance(claims.get("c"), int):
        raise signing.BadSignature("Malformed claims.")
    return claims
