"""Login lockouts (django-axes) on both password logins: `/admin/login/` and `POST /api/token/`.

django-axes counts failed passwords per account and per client IP (`AXES_LOCKOUT_PARAMETERS`,
settings); the `LOGIN_FAILURE_LIMIT`-th failure (6 by default) locks that account, or that
address, for `LOGIN_LOCKOUT_MINUTES` (15), whatever password comes next. Here: who an attempt is
counted against (one account, however the email is spelt, whichever login path), what a locked-out
caller is told (429 with Retry-After: the admin's page, or the API's one error shape), and the
operator's unlock. The client IP is `shokti.api.client_ip.client_ip` (NUM_PROXIES), as for throttles.
"""

from __future__ import annotations

from collections.abc import Iterable

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework import exceptions, status

from shokti.api.exceptions import error_body

LOCKED_OUT_MESSAGE = "Too many failed logins: this account or address is locked for a while."


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def login_username(request, credentials: dict | None) -> str | None:
    """The account an attempt counts against: the admin form's `username` or the token API's `email`, lower case."""
    credentials = credentials or {}
    value = credentials.get("username") or credentials.get("email")
    if value is None and request is not None:
        data = getattr(request, "data", None)
        if not hasattr(data, "get"):
            data = getattr(request, "POST", {})
        value = data.get("username") or data.get("email")
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip().lower()[:255] or None


class LockedOut(exceptions.Throttled):
    """429 in the one error shape, with Retry-After: the login is locked by too many failures."""

    default_code = "locked_out"

    def __init__(self):
        super().__init__(wait=lockout_seconds(), detail=LOCKED_OUT_MESSAGE)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE: the admin gets its page, anything else the API's error shape."""
    seconds = lockout_seconds()
    if request.path.startswith("/admin/"):
        response = render(
            request, "admin/lockout.html", {"minutes": max(1, round(seconds / 60)), "title": "Login locked"},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
        )
    else:
        # As LockedOut reads through DRF's Throttled.
        body = error_body(code="locked_out", message=f"{LOCKED_OUT_MESSAGE} Expected available in {seconds} seconds.")
        body["error"]["retry_after_seconds"] = seconds
        response = JsonResponse(body, status=status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(seconds)
    return response


def lockouts_clear(*, attempts: Iterable[AccessAttempt]) -> int:
    """Unlock the accounts and addresses of `attempts`: every failure counted against them is forgotten."""
    removed = 0
    for username, ip_address in {(attempt.username, attempt.ip_address) for attempt in attempts}:
        removed += axes_reset(ip=ip_address, username=username, ip_or_username=True)
    return removed
