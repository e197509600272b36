"""A root urlconf for error-shape tests: the project's URLs plus views that fail on purpose."""

from django.http import Http404
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from shokti.urls import handler404, handler500  # noqa: F401
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


urlpatterns = [
    path("crash", plain_view_crash),
    path("api/crash/", ApiCrash.as_view()),
    path("api/missing/", ApiMissing.as_view()),
    *project_urlpatterns,
]
