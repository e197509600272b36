from django.contrib import admin
from django.urls import include, path
from django.utils import translation
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from crm.auth_apis import TokenObtainApi, TokenRefreshApi
from shokti import health, home, metrics

admin.site.site_header = gettext_lazy("Shokti operations")
admin.site.site_title = "Shokti"
admin.site.index_title = gettext_lazy("Operations console")
admin.site.site_url = "/"  # "View site": the landing page (shokti/home.py)


@extend_schema(exclude=True)  # the schema itself is not an operation of the API (as SpectacularAPIView is not)
class SchemaApi(SpectacularAPIView):
    """The API's schema in English whatever the caller's language (the model help texts and labels it shows are
    translated for the console); `?lang=bn` still asks for another."""

    def get(self, request, *args, **kwargs):
        if request.GET.get("lang"):
            return super().get(request, *args, **kwargs)
        with translation.override("en"):
            return super().get(request, *args, **kwargs)


urlpatterns = [
    path("", home.home, name="home"),
    path("health", health.health, name="health"),
    path("metrics", metrics.export, name="metrics"),
    # engage's seed paths (before admin/: /admin/dlq/replay lives there): /inbound-message, /queue/stats,
    # SmartEngage sends, and the app-facing /events, /book, /l/<code>, /api/deeplinks/verify.
    path("", include("engage.urls")),
    # CoachNova: /api/workers/<id>/punctuality, /api/coaching/..., /me/punctuality, /me/coaching, /internal/ai/coachnova/run.
    path("", include("coaching.urls")),
    # The dashboard's breakdown pages (/admin/reports/..., before admin/) and /api/reports/...
    path("", include("reports.urls")),
    path("admin/", admin.site.urls),
    # The console's language switch (POST /i18n/setlang/), kept in the person's cookie and profile.
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # JWT for people; failed passwords lock per account and IP (django-axes, crm/lockouts.py).
    path("api/token/", TokenObtainApi.as_view(), name="token-obtain"),
    path("api/token/refresh/", TokenRefreshApi.as_view(), name="token-refresh"),
    # App-facing: /auth/request-otp, /auth/verify-otp, /auth/refresh, /services.
    path("", include("crm.auth_apis")),
    path("api/", include("crm.urls")),
    # Provider webhooks (Twilio, Meta) and email open/click/unsubscribe links.
    path("channels/", include("channels_app.urls")),
]

handler400 = "shokti.api.exceptions.json_bad_request"
handler403 = "shokti.api.exceptions.json_permission_denied"
handler404 = "shokti.api.exceptions.json_not_found"
handler500 = "shokti.api.exceptions.json_server_error"
