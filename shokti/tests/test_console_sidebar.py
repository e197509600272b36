"""The console's sidebar (shokti/console.py) reaches every model page people work in."""

from django.contrib import admin

from shokti.console import sidebar_entries, sidebar_navigation

# Registered for their admin's side pages or autocomplete, reached from other pages, not from the sidebar.
# (beat's schedule kinds are edited from a schedule's page; OTP devices and JWT tokens from a user's.)
NOT_IN_THE_SIDEBAR = {
    "otp_email.emaildevice", "token_blacklist.outstandingtoken", "token_blacklist.blacklistedtoken",
    "django_celery_beat.intervalschedule", "django_celery_beat.crontabschedule", "django_celery_beat.solarschedule",
    "django_celery_beat.clockedschedule",
}


def test_every_registered_model_page_is_in_the_sidebar_or_named_as_reached_elsewhere(db):
    linked = {item["link"].split("/admin/")[-1].rstrip("/") for group in sidebar_entries() for item in group["items"]}
    missing = []
    for model in admin.site._registry:
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        if f"{model._meta.app_label}/{model._meta.model_name}" not in linked and label not in NOT_IN_THE_SIDEBAR:
            missing.append(label)
    assert not missing, missing


def test_a_person_is_shown_the_entries_they_may_open_as_plain_links(rf, staff_user):
    from django.urls import reverse

    request = rf.get("/admin/")
    request.user = staff_user  # Operations

    shown = {item["link"]: item["title"] for group in sidebar_navigation(request) for item in group["items"]}

    assert shown[reverse("admin:crm_lead_inbox")] == "Inbox"
    assert reverse("admin:crm_lead_changelist") in shown
    assert reverse("admin:axes_accessattempt_changelist") not in shown  # superusers' page
    staff_user.is_active = False
    assert sidebar_navigation(request) == []
