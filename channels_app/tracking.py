"""Signed links of emails: open pixel, click-through and unsubscribe (django.core.signing).

A token carries opaque ids only: the company and the `EmailDelivery` row (and, for a click, the
link's position in it). No address, no URL: the click redirect reads the URL we stored when the
email was sent, and redirects only to an allowed host (`click_allowed_hosts`), so neither a
tampered token nor a link the model invented can send anyone elsewhere.

Tokens of emails sent before (claims with the contact, the address and the URL) are still read,
so the unsubscribe links of old emails keep working; their clicks obey the same host rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

OPEN_SALT = "channels.email.open"
CLICK_SALT = "channels.email.click"
UNSUBSCRIBE_SALT = "channels.email.unsubscribe"

# User agents of link scanners and image prefetchers (security gateways, chat link previews,
# mail privacy proxies that fetch everything): their hits are recorded, flagged, and a person's
# later hit replaces them. EMAIL_PREFETCH_USER_AGENTS adds to the list.
PREFETCH_USER_AGENTS = (
    "barracuda", "mimecast", "proofpoint", "urldefense", "safelinks", "bingpreview", "microsoft office",
    "ms-office", "googleimageproxy-prefetch", "yahoomailproxy-prefetch", "python-requests", "curl/", "wget/",
    "facebookexternalhit", "slackbot", "twitterbot", "linkedinbot", "whatsapp/", "skypeuripreview", "bot",
)


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _token(claims: dict[str, Any], salt: str) -> str:
    return signing.dumps(claims, salt=salt)


def open_url(*, company_id: int, delivery_id: int) -> str:
    token = _token({"c": company_id, "d": delivery_id}, OPEN_SALT)
    return _absolute(reverse("channels:email-open", kwargs={"token": token}))


def click_url(*, company_id: int, delivery_id: int, index: int) -> str:
    token = _token({"c": company_id, "d": delivery_id, "l": index}, CLICK_SALT)
    return _absolute(reverse("channels:email-click", kwargs={"token": token}))


def unsubscribe_url(*, company_id: int, delivery_id: int) -> str:
    token = _token({"c": company_id, "d": delivery_id}, UNSUBSCRIBE_SALT)
    return _absolute(reverse("channels:email-unsubscribe", kwargs={"token": token}))


def token_read(token: str, *, salt: str, max_age_days: int | None = None) -> dict[str, Any]:
    """The claims of a token; raises signing.BadSignature when tampered with or expired."""
    max_age = max_age_days * 86400 if max_age_days else None
    claims = signing.loads(token, salt=salt, max_age=max_age)
    if not isinstance(claims, dict) or not isinstance(claims.get("c"), int):
        raise signing.BadSignature("Malformed claims.")
    if "d" in claims and not isinstance(claims["d"], int):
        raise signing.BadSignature("Malformed claims.")
    return claims


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def click_allowed_hosts(*, extra: Iterable[str] = ()) -> frozenset[str]:
    """Hosts an email's links may lead to: ours (SITE_URL), the deep-link and short-link hosts,
    EMAIL_LINK_ALLOWED_HOSTS, and `extra` (the company's own list, when the sender passes one)."""
    hosts = {
        _host(settings.SITE_URL),
        _host(getattr(settings, "DEEP_LINK_BASE_URL", "")),
        _host(getattr(settings, "DEEP_LINK_APP_URL", "")),
        _host(getattr(settings, "SHORT_LINK_BASE_URL", "")),
        *(host.strip().lower() for host in getattr(settings, "EMAIL_LINK_ALLOWED_HOSTS", ())),
        *(host.strip().lower() for host in extra),
    }
    return frozenset(host for host in hosts if host)


def is_allowed_link(url: str, hosts: Iterable[str]) -> bool:
    """An http(s) URL on one of `hosts` or a subdomain of one (`book.example.com` under `example.com`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    host = parts.hostname.lower()
    return any(host == allowed or host.endswith("." + allowed) for allowed in hosts)


def is_prefetch(user_agent: str) -> bool:
    agent = (user_agent or "").lower()
    markers = (*PREFETCH_USER_AGENTS, *(marker.lower() for marker in getattr(settings, "EMAIL_PREFETCH_USER_AGENTS", ())))
    return not agent or any(marker in agent for marker in markers)
