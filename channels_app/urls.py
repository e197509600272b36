from django.urls import path

from channels_app import apis

app_name = "channels"

urlpatterns = [
    path("sms/<str:token>/status", apis.SmsStatusCallbackApi.as_view(), name="sms-status"),
    path("sms/<str:token>/inbound", apis.SmsInboundApi.as_view(), name="sms-inbound"),
    path("whatsapp", apis.WhatsAppCloudAppWebhookApi.as_view(), name="whatsapp-cloud-app-webhook"),
    path("whatsapp/<str:token>", apis.WhatsAppCloudWebhookApi.as_view(), name="whatsapp-cloud-webhook"),
    path("email/<str:token>/events", apis.EmailEventsWebhookApi.as_view(), name="email-events"),
    path("email/open/<str:token>.gif", apis.EmailOpenApi.as_view(), name="email-open"),
    path("email/click/<str:token>", apis.EmailClickApi.as_view(), name="email-click"),
    path("email/unsubscribe/<str:token>", apis.EmailUnsubscribeApi.as_view(), name="email-unsubscribe"),
]
