"""engage's URLs, mounted at the site root by shokti/urls.py (the seed's paths)."""

from django.urls import path

from engage.ai.apis import SafetyCheckApi
from engage.campaigns.apis import SmartEngageRunSegmentApi, SmartEngageSendBulkApi, SmartEngageSendSingleApi
from engage.campaigns.event_apis import DeepLinkVerifyApi, EventCreateApi, book_redirect, short_link_redirect
from engage.conversations.apis import InboundMessageApi
from engage.experiments.apis import ExperimentListApi, ExperimentResultsApi
from engage.ledger.apis import DlqReplayApi, QueueStatsApi

urlpatterns = [
    path("inbound-message", InboundMessageApi.as_view(), name="inbound-message"),
    path("queue/stats", QueueStatsApi.as_view(), name="queue-stats"),
    path("admin/dlq/replay", DlqReplayApi.as_view(), name="dlq-replay"),
    path("api/safety/check", SafetyCheckApi.as_view(), name="safety-check"),
    # SmartEngage, for staff and internal callers.
    path("admin/smartengage/send-single", SmartEngageSendSingleApi.as_view(), name="smartengage-send-single"),
    path("admin/smartengage/send-bulk", SmartEngageSendBulkApi.as_view(), name="smartengage-send-bulk"),
    path("internal/ai/smartengage/run-segment", SmartEngageRunSegmentApi.as_view(), name="smartengage-run-segment"),
    # App-facing: user events, the deep-link redirect, short links, deep-link verification.
    path("events", EventCreateApi.as_view(), name="event-create"),
    path("book", book_redirect, name="deeplink-book"),
    path("l/<str:code>", short_link_redirect, name="short-link"),
    path("api/deeplinks/verify", DeepLinkVerifyApi.as_view(), name="deeplink-verify"),
    # Experiments: staff JWT or a company API key.
    path("api/experiments/", ExperimentListApi.as_view(), name="experiment-list"),
    path("api/experiments/<int:pk>/results", ExperimentResultsApi.as_view(), name="experiment-results"),
]
