"""The console's sidebar (shokti/console.py) reaches every model page people work in."""

from django.contrib import admin

from shokti.console import sidebar_navigation

# Registered for their admin's side pages or autocomplete, reached from other pages, not from the sidebar.
# (beat's schedule kinds are edited from a schedule's page; OTP devices and JWT tokens from a user's.)
NOT_IN_THE_SIDEBAR = {
    "otp_email.emaildevice", "token_blacklist.outstandingtoken", "token_blacklist.blacklistedtoken",
    "django_celery_beat.intervalschedule", "django_celery_beat.crontabschedule", "django_celery_beat.solarschedule",
    "django_celery_beat.clockedschedule",
}


def test_every_registered_model_page_is_in_the_sidebar_or_named_as_reached_elsewhere(rf, db):
    request = rf.get("/admin/")
    linked = {item["link"](request).split("/admin/")[-1].rstrip("/")
              for group in sidebar_navigation(request) for item in group["items"]}
    missing = []
    for model in admin.site._registry:
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if f"{model._meta.app_label}/{model._meta.model_name}" not in linked and label not in NOT_IN_THE_SIDEBAR:
            missing.append(label)
    assert not missing, missing
