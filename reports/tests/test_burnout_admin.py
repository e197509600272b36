"""Burnout alerts in the console: the default view is by zone and service, one alert's page is recorded in the
worker's timeline, its steps call the services; owners and Operations of the company only (alice may, bob of
another company gets a 404, marketing is refused, an anonymous caller goes to the login page)."""

import pytest
from django.urls import reverse

from crm.models import Event, Membership
from reports.burnout.models import BurnoutAlert
from reports.burnout.services import burnout_evaluate
from reports.tests.helpers import manager_of, overworked, worker_of

pytestmark = pytest.mark.django_db

LIST = "admin:reports_burnoutalert_changelist"


@pytest.fixture
def alert(company):
    overworked(worker_of(company, name="Karim Mia"), zone="Mirpur")
    burnout_evaluate(company=company)
    return BurnoutAlert.objects.get(company=company)


@pytest.fixture
def foreign_alert(other_company):
    overworked(worker_of(other_company, name="Selim Beta", phone="+8801911000909"), zone="Uttara")
    burnout_evaluate(company=other_company)
    return BurnoutAlert.objects.get(company=other_company)


def step(client, alert, name, **data):
    return client.post(reverse("admin:reports_burnoutalert_step", args=[alert.pk, name]), data)


def test_the_default_list_is_by_zone_and_service_and_shows_only_the_users_company(client, staff_user, alert,
                                                                                     foreign_alert):
    client.force_login(staff_user)
    response = client.get(reverse(LIST))
    assert response.status_code == 200
    segments = response.context["segments"]
    assert [(row["zone"], row["service_category"], row["total"], row["alert"]) for row in segments] == [
        ("Mirpur", "Cleaning", 1, 1)]
    html = response.content.decode()
    assert 'id="burnout-segments"' in html and "Karim Mia" in html
    assert "Selim Beta" not in html and "Uttara" not in html  # neither the row nor the zone filter's choices


def test_resolved_alerts_leave_the_default_list_and_stay_one_click_away(client, staff_user, alert):
    BurnoutAlert.objects.filter(pk=alert.pk).update(status="resolved", outcome="recovered")
    client.force_login(staff_user)
    assert "Karim Mia" not in client.get(reverse(LIST)).content.decode()
    assert "Karim Mia" in client.get(reverse(LIST) + "?state=resolved").content.decode()


def test_opening_an_alert_is_recorded_in_the_workers_timeline(client, staff_user, alert):
    client.force_login(staff_user)
    response = client.get(reverse("admin:reports_burnoutalert_change", args=[alert.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "60 h in the last 7 days (threshold 55 h)" in html and 'id="alert-acknowledge"' in html
    [viewed] = Event.objects.filter(type="burnout.viewed")
    assert (viewed.contact, viewed.actor, viewed.payload) == (alert.worker.contact, staff_user, {"alert_id": alert.pk, "page": "alert"})


def test_the_steps_call_the_services(client, staff_user, alert):
    client.force_login(staff_user)
    assert step(client, alert, "acknowledge").status_code == 302
    assert step(client, alert, "act", action="fewer_jobs", note="").status_code == 302  # refused: no note
    alert.refresh_from_db()
    assert (alert.status, alert.acted_at) == ("acknowledged", None)
    step(client, alert, "act", action="fewer_jobs", note="Two jobs a day this week")
    step(client, alert, "resolve", outcome="recovered", note="Hours back to 42")
    alert.refresh_from_db()
    assert (alert.status, alert.action, alert.outcome, alert.resolved_by) == ("resolved", "fewer_jobs", "recovered",
                                                                            staff_user)
    assert step(client, alert, "unknown").status_code == 404
    assert client.get(reverse("admin:reports_burnoutalert_step", args=[alert.pk, "resolve"])).status_code == 405


def test_the_bulk_acknowledge_action(client, staff_user, alert):
    client.force_login(staff_user)
    response = client.post(reverse(LIST), {"action": "acknowledge", "_selected_action": [alert.pk]})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == staff_user


def test_another_companys_staff_cannot_see_or_touch_the_alert(client, other_staff_user, alert):
    client.force_login(other_staff_user)
    assert client.get(reverse("admin:reports_burnoutalert_change", args=[alert.pk])).status_code == 404
    assert step(client, alert, "acknowledge").status_code == 404
    assert step(client, alert, "resolve", outcome="false_alarm").status_code == 404
    alert.refresh_from_db()
    assert alert.status == "open"
    assert not Event.objects.filter(type__startswith="burnout.").exists()


def test_marketing_and_anonymous_callers_are_refused(client, company, alert):
    marketing = manager_of(company, email="mona@alpha.test", role=Membership.Role.MARKETING, groups=("Marketing",))
    client.force_login(marketing)
    assert client.get(reverse(LIST)).status_code == 403
    assert client.get(reverse("admin:reports_burnoutalert_change", args=[alert.pk])).status_code == 403
    assert step(client, alert, "acknowledge").status_code == 404
    client.logout()
    response = step(client, alert, "acknowledge")
    assert response.status_code == 302 and "/login/" in response["Location"]
    alert.refresh_from_db()
    assert alert.status == "open" and not Event.objects.filter(type__startswith="burnout.").exists()


def test_operations_edit_the_companys_thresholds(client, staff_user, alert):
    client.force_login(staff_user)
    settings_row = alert.company.burnout_settings
    response = client.get(reverse("admin:reports_burnoutsettings_change", args=[settings_row.pk]))
    assert response.status_code == 200 and "Hours and days off" in response.content.decode()
    assert client.get(reverse("admin:reports_burnoutsettings_changelist")).status_code == 200


def test_the_bulk_act_and_resolve_actions_ask_for_the_note_and_the_outcome(client, staff_user, alert):
    client.force_login(staff_user)
    selected = {"_selected_action": [alert.pk]}
    # the action asks first
    page = client.post(reverse(LIST), {"action": "act", **selected})
    assert page.status_code == 200 and 'id="burnout-step-form"' in page.content.decode()
    # without a note nothing happens
    assert client.post(reverse(LIST), {"action": "act", "apply": "1", "kind": "day_off", "note": "",
                                       **selected}).status_code == 200
    alert.refresh_from_db()
    assert alert.status == "open"
    client.post(reverse(LIST), {"action": "act", "apply": "1", "kind": "fewer_jobs", "note": "One job a day until Sunday",
                                **selected})
    alert.refresh_from_db()
    assert (alert.status, alert.action, alert.action_note) == ("acted", "fewer_jobs", "One job a day until Sunday")
    client.post(reverse(LIST), {"action": "resolve", "apply": "1", "outcome": "ongoing_support", "note": "", **selected})
    alert.refresh_from_db()
    assert (alert.status, alert.outcome, alert.resolved_by) == ("resolved", "ongoing_support", staff_user)


def test_the_workers_page_shows_the_open_alert_with_its_numbers_and_a_link_to_handle_it(client, staff_user, alert):
    client.force_login(staff_user)
    response = client.get(reverse("admin:crm_worker_change", args=[alert.worker_id]))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="worker-burnout-alert"' in html and 'data-level="alert"' in html
    assert "60 h in the last 7 days" in html  # the explanation in numbers
    assert reverse("admin:reports_burnoutalert_change", args=[alert.pk]) in html
    assert 'id="worker-punctuality"' in html  # coaching's panels stay
    viewed = Event.objects.get(type="burnout.viewed")
    assert viewed.payload == {"alert_id": alert.pk, "page": "worker"} and viewed.actor == staff_user
    # resolved: the page shows no alert
    BurnoutAlert.objects.filter(pk=alert.pk).update(status="resolved", outcome="recovered")
    assert 'id="worker-burnout-alert"' not in client.get(
        reverse("admin:crm_worker_change", args=[alert.worker_id])).content.decode()


def test_the_workers_page_shows_no_alert_to_people_who_may_not_see_burnout(client, company, alert):
    marketer = manager_of(company, email="mia@alpha.test", role=Membership.Role.MARKETING, groups=("Marketing",))
    from django.contrib.auth.models import Permission

    marketer.user_permissions.add(*Permission.objects.filter(codename__in=["view_worker", "change_worker"]))
    client.force_login(marketer)
    response = client.get(reverse("admin:crm_worker_change", args=[alert.worker_id]))
    assert response.status_code == 200
    assert 'id="worker-burnout-alert"' not in response.content.decode()
    assert not Event.objects.filter(type="burnout.viewed").exists()


def test_the_alert_and_the_managers_email_read_in_bengali(client, staff_user, alert, settings):
    from django.utils import translation

    from reports.burnout.services import _email_body, _email_subject

    client.force_login(staff_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "bn"
    html = client.get(reverse("admin:reports_burnoutalert_change", args=[alert.pk])).content.decode()
    assert "শেষ ৭ দিনে 60 ঘণ্টা (সীমা 55 ঘণ্টা)" in html and "স্বীকার করুন" in html
    assert "60 h in the last 7 days" not in html
    with translation.override("bn"):
        assert "হয়তো অতিরিক্ত কাজ করছেন: শেষ ৭ দিনে 60 ঘণ্টা" in _email_body(alert)
        assert _email_subject(alert).startswith(f"[{alert.company.name}] অতিরিক্ত কাজের চাপ")
    # the email job renders in the site's language (LANGUAGE_CODE), whatever the thread had active
    from reports.burnout.services import burnout_alert_notify

    with translation.override("bn"):
        burnout_alert_notify(alert_id=alert.pk)
    from django.core import mail

    assert "may be overworked: 60 h in the last 7 days (threshold 55 h)." in mail.outbox[-1].body
