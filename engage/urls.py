"""engage's URLs, mounted at the site root by shokti/urls.py (the seed's paths)."""

from django.urls import include, path

from engage.ai.apis import SafetyCheckApi
from engage.apis import DlqReplayApi, InboundMessageApi, QueueStatsApi

urlpatterns = [
    path("inbound-message", InboundMessageApi.as_view(), name="inbound-message"),
    path("queue/stats", QueueStatsApi.as_view(), name="queue-stats"),
    path("admin/dlq/replay", DlqReplayApi.as_view(), name="dlq-replay"),
    path("api/safety/check", SafetyCheckApi.as_view(), name="safety-check"),
    # SmartEngage: /admin/smartengage/send-single, /admin/smartengage/send-bulk, /internal/ai/smartengage/run-segment.
    path("", include("engage.campaign_apis")),
]
