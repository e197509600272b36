"""A root urlconf for error-shape tests: the project's URLs plus views that fail on purpose."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, JsonResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from shokti.urls import handler400, handler403, handler404, handler500  # noqa: F401
from shokti.urls import urlpatterns as project_urlpatterns


def plain_view_crash(request):
    raise RuntimeError("a bug in a plain Django view")


class ApiCrash(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("a bug in an API view")


class ApiMissing(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise Http404("no such thing")


def form_echo(request):
    """A plain view that reads a form (Django parses it: its own size limit applies)."""
    return JsonResponse({"fields": sorted(request.POST)})


def suspicious(request):
    raise SuspiciousOperation("a forged host, a broken multipart boundary ...")


def denied(request):
    raise PermissionDenied


class Flaky:
    """Views whose first `failures` calls lose the database connection (OperationalError), then answer."""

    calls: dict[str, int] = {}

    @classmethod
    def reset(cls) -> None:
        cls.calls = {}

    @classmethod
    def count(cls, name: str) -> int:
        cls.calls[name] = cls.calls.get(name, 0) + 1
        return cls.calls[name]


def flaky_plain(request):
    from crm.models import Company

    if Flaky.count("plain") <= int(request.GET.get("failures", 1)):
        raise OperationalError("server closed the connection unexpectedly")
    return JsonResponse({"companies": Company.objects.count()})


class FlakyApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request):
        if Flaky.count("api-get") <= int(request.query_params.get("failures", 1)):
            raise OperationalError("terminating connection due to administrator command")
        return JsonResponse({"ok": True})

    def post(self, request):
        if Flaky.count(f"post {type(self).__name__}") <= 1:
            raise OperationalError("terminating connection due to administrator command")
        return JsonResponse({"ok": True, "data": request.data})


class FlakyRetrySafeApi(FlakyApi):
    is_retry_safe = True


urlpatterns = [
    path("form-echo", form_echo),
    path("suspicious", suspicious),
    path("denied", denied),
    path("flaky", flaky_plain),
    path("api/flaky/", FlakyApi.as_view()),
    path("api/flaky-retry-safe/", FlakyRetrySafeApi.as_view()),
    path("crash", plain_view_crash),
    path("api/crash/", ApiCrash.as_view()),
    path("api/missing/", ApiMissing.as_view()),
    *project_urlpatterns,
]
