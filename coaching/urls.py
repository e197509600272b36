from django.urls import path

from coaching.apis import (
    CoachingImpactApi,
    CoachingRunDetailApi,
    CoachNovaRunApi,
    MyCoachingApi,
    MyPunctualityApi,
    WorkerPunctualityApi,
    coaching_audio,
)

urlpatterns = [
    path("api/workers/<int:pk>/punctuality", WorkerPunctualityApi.as_view(), name="worker-punctuality"),
    path("api/coaching/runs/<int:pk>", CoachingRunDetailApi.as_view(), name="coaching-run"),
    path("api/coaching/impact", CoachingImpactApi.as_view(), name="coaching-impact"),
    path("me/punctuality", MyPunctualityApi.as_view(), name="my-punctuality"),
    path("me/coaching", MyCoachingApi.as_view(), name="my-coaching"),
    path("coaching/audio/<str:name>", coaching_audio, name="coaching-audio"),
    path("internal/ai/coachnova/run", CoachNovaRunApi.as_view(), name="coachnova-run"),
]
