"""Middleware of the kernel: the API's shorter chain, request limits answered before anything reads the request,
and database outages.

- `ApiChainMiddleware` (first in MIDDLEWARE): API views run under a shorter chain (`settings.API_MIDDLEWARE`).
  A DRF view that authenticates by API key or token, never by session, uses nothing of the session, CSRF,
  authentication, messages, static-file or console middleware (on the webhook those were ~6% of the
  request's CPU). This middleware resolves the URL and, for such a view, hands the request to a second
  handler built from `settings.API_MIDDLEWARE` (reusing the match: the URL is resolved once); everything
  else goes down the full chain. Being middleware, it serves every handler alike, the WSGI server's and
  the test client's.

- `RequestLimitsMiddleware` (first in either chain): a URL longer than `HTTP_MAX_URL_LENGTH` is a 414, a
  declared body over `DATA_UPLOAD_MAX_MEMORY_SIZE` a 413, an unreadable Content-Length a 400, all in the
  one error shape, before sessions, authentication, throttles or parsers run. (Multipart bodies are
  left to Django, which counts only their non-file fields against the limit.)
- `DatabaseUnavailableMiddleware`: a view that loses its database connection (PostgreSQL restarting,
  a terminated backend, a connection that went stale) is run once more on a fresh connection when
  that is safe (GET/HEAD/OPTIONS, or a view whose class says `is_retry_safe = True`: the inbound
  webhook, which deduplicates), and otherwise answers 503 with Retry-After, never a 500.
- `ConsolePlanMiddleware`: the console's pages plan every query for its own company
  (`plan_cache_mode = force_custom_plan` for the request): a generic prepared plan made for a company of
  a million rows reads a small company's list badly. The API keeps `DATABASE_PLAN_CACHE_MODE`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.urls import Resolver404, get_resolver
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from shokti.api.exceptions import json_error_response, json_service_unavailable
from shokti.api.parsers import max_body_bytes

logger = logging.getLogger(__name__)

_API_MATCH = "_shokti_api_match"


def api_chain(view):
    """Mark a plain Django view that reads no session, user, message or CSRF token (a customer's link redirect):
    it runs under `settings.API_MIDDLEWARE` as API views do. Put it outermost."""
    view.api_chain = True
    return view


def is_api_view(view) -> bool:
    """A DRF view whose authentication never reads a session (a key or a token, or none), or a view marked
    with `api_chain`."""
    if getattr(view, "api_chain", False):
        return True
    view_class = getattr(view, "cls", None)
    if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
        return False
    return not any(
        isinstance(authenticator, type) and issubclass(authenticator, SessionAuthentication)
        for authenticator in view_class.authentication_classes
    )


class _ApiHandler(BaseHandler):
    """Django's request handling with `settings.API_MIDDLEWARE` as its chain."""

    def __init__(self, middleware: list[str]):
        super().__init__()
        # BaseHandler.load_middleware reads settings.MIDDLEWARE: point it at the API's list while it builds
        # (once, at start-up, before any request is served).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = middleware
        try:
            self.load_middleware()
        finally:
            settings.MIDDLEWARE = full

    def resolve_request(self, request):
        match = getattr(request, _API_MATCH, None)
        if match is None:  # pragma: no cover - only requests resolved by ApiChainMiddleware come here
            return super().resolve_request(request)
        request.resolver_match = match
        return match


class ApiChainMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.api = _ApiHandler(list(settings.API_MIDDLEWARE))
        self._is_api: dict[object, bool] = {}

    def __call__(self, request):
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return self.get_response(request)  # the full chain answers (CommonMiddleware's slash redirect, 404)
        is_api = self._is_api.get(match.func)
        if is_api is None:
            is_api = self._is_api[match.func] = is_api_view(match.func)
        if not is_api:
            return self.get_response(request)
        setattr(request, _API_MATCH, match)
        return self.api._middleware_chain(request)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
DEFAULT_MAX_URL_LENGTH = 8190


class RequestLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        max_url = int(getattr(settings, "HTTP_MAX_URL_LENGTH", DEFAULT_MAX_URL_LENGTH))
        if max_url and len(request.path) + len(request.META.get("QUERY_STRING", "")) + 1 > max_url:
            return json_error_response(status_code=414, message=f"The URL is longer than {max_url} characters.")
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared:
            try:
                length = int(declared)
                if length < 0:
                    raise ValueError
            except ValueError:
                return json_error_response(status_code=400, message="Unreadable Content-Length header.")
            limit = max_body_bytes()
            if limit and length > limit and not request.content_type.startswith("multipart/"):
                return json_error_response(
                    status_code=413, message=f"The request body is larger than {limit} bytes."
                )
        return self.get_response(request)


def _is_retry_safe(request, view_func) -> bool:
    if request.method in SAFE_METHODS:
        return True
    view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
    return bool(getattr(view_class, "is_retry_safe", False))


def _close_connections() -> bool:
    """Close this thread's database connections (they reopen on next use); False inside a transaction."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            return False
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # a broken connection may fail to close cleanly; it is dropped all the same
            connection.connection = None
    return True


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_shokti_database_retry", False):
            request._shokti_database_retry = False
            request._shokti_database_retried = True
            if _close_connections():
                logger.info("database connection lost during %s %s: running it again", request.method, request.path)
                response = self.get_response(request)
            else:
                response = json_service_unavailable(request)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        is_retry_safe = _is_retry_safe(request, view_func)
        if is_retry_safe and request.method not in SAFE_METHODS:
            try:
                request.body  # noqa: B018  (kept in memory: a second run reads the same body)
            except RawPostDataException:
                is_retry_safe = False
        request._shokti_retry_safe = is_retry_safe
        return None

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if getattr(request, "_shokti_retry_safe", False) and not getattr(request, "_shokti_database_retried", False):
            request._shokti_database_retry = True
            return HttpResponse(status=503)  # a placeholder: __call__ runs the request again
        logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        return json_service_unavailable(request)


CONSOLE_PREFIX = "/admin/"


class ConsolePlanMiddleware:
    """For console requests on PostgreSQL, plan each query for its own values, then restore the
    connection's mode: two statements a console page (well under a millisecond), none on the API."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        connection = connections["default"]
        if not request.path.startswith(CONSOLE_PREFIX) or connection.vendor != "postgresql":
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET plan_cache_mode = force_custom_plan")
        except (OperationalError, InterfaceError):
            return self.get_response(request)  # the database is away: the view's own handling answers
        try:
            return self.get_response(request)
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("RESET plan_cache_mode")
            except (OperationalError, InterfaceError):
                connection.close()  # the next request opens a new connection with the configured mode
