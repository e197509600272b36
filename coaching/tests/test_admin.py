"""The worker's admin page shows punctuality and coaching with replies; operations accept a reason there; another
company's staff cannot."""

import datetime as dt

import pytest
from django.urls import reverse

from coaching.models import BookingPunctuality, CoachingRecipient, CoachingRun, CoachingSettings
from coaching.punctuality import local_today, punctuality_backfill
from coaching.tests.helpers import DHAKA, booking_of, worker_of
from crm.permissions import OPERATIONS, grant
from engage.models import Job

OPS_GRANTS = ["view_coachingsettings", "change_coachingsettings", "view_coachingrun", "change_coachingrun",
              "view_coachingrecipient", "change_coachingrecipient", "view_workerpunctuality"]


@pytest.fixture
def coached(company):
    grant(OPERATIONS, "coaching", OPS_GRANTS)
    worker = worker_of(company, name="Karim Mia")
    today = local_today(company)
    bookings = []
    for days_ago in (1, 2, 3):
        day = today - dt.timedelta(days=days_ago)
        bookings.append(booking_of(worker, dt.datetime(day.year, day.month, day.day, 10, tzinfo=DHAKA),
                                   late_minutes=30))
    punctuality_backfill(company=company)
    run = CoachingRun.objects.create(company=company, as_of=today, status="completed")
    row = CoachingRecipient.objects.create(
        run=run, company=company, worker=worker, status="coached", text="করিম ভাই, ধন্যবাদ।",
        booking_ids=[booking.pk for booking in bookings], reply_text="রাস্তায় জ্যাম ছিল", reply_reason="traffic",
    )
    return worker, row


@pytest.mark.django_db
def test_the_worker_page_shows_punctuality_coaching_and_accepts_a_reason(client, staff_user, coached):
    worker, row = coached
    client.force_login(staff_user)
    page = client.get(reverse("admin:crm_worker_change", args=[worker.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="punctuality-chart"' in html and "<circle" in html and "করিম ভাই, ধন্যবাদ।" in html
    assert "রাস্তায় জ্যাম ছিল" in html and "Accept the reason (excuse 3 bookings)" in html

    accepted = client.post(reverse("admin:crm_worker_coaching_accept", args=[worker.pk, row.pk]))

    assert accepted.status_code == 302
    assert BookingPunctuality.objects.filter(worker=worker, is_excused=True).count() == 3
    row.refresh_from_db()
    assert row.accepted_at and row.accepted_by == staff_user


@pytest.mark.django_db
def test_another_companys_staff_cannot_accept(client, other_staff_user, coached):
    worker, row = coached
    client.force_login(other_staff_user)
    response = client.post(reverse("admin:crm_worker_coaching_accept", args=[worker.pk, row.pk]))
    assert response.status_code in (403, 404)
    assert not BookingPunctuality.objects.filter(is_excused=True).exists()


@pytest.mark.django_db
def test_run_now_and_dry_run_from_the_settings_and_the_run_page(client, staff_user, company, coached):
    client.force_login(staff_user)
    settings_row = CoachingSettings.objects.get(company=company)
    url = reverse("admin:coaching_coachingsettings_changelist")
    client.post(url, {"action": "dry_run", "_selected_action": [settings_row.pk]})
    run = CoachingRun.objects.filter(company=company, is_dry_run=True).get()
    assert Job.objects.filter(task_name="coachnova_run", payload={"run_id": run.pk}).exists()
    client.post(reverse("admin:coaching_coachingrun_changelist"), {"action": "cancel", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "cancelled"
    page = client.get(reverse("admin:coaching_coachingrun_change", args=[run.pk]))
    assert page.status_code == 200 and "Impact" in page.content.decode()
    for name in ("coachingrun", "coachingrecipient", "workerpunctuality", "coachingsettings"):
        assert client.get(reverse(f"admin:coaching_{name}_changelist")).status_code == 200


@pytest.mark.django_db
def test_the_worker_page_lists_every_coaching_and_the_skips_of_the_companys_last_runs(client, staff_user, coached,
                                                                                       monkeypatch):
    """No index is led by the worker but the coached rows' (coaching 0007): the other rows are found through the
    company's last runs; a coached row is always listed, however old."""
    worker, coached_row = coached
    monkeypatch.setattr("coaching.selectors.INTERNAL_RUNS", 2)
    today = local_today(worker.company)
    runs = [CoachingRun.objects.create(company=worker.company, as_of=today, status="completed") for _ in range(3)]
    skipped = [CoachingRecipient.objects.create(run=run, company=worker.company, worker=worker, status="skipped",
                                                reason="on_time") for run in runs]
    other = worker_of(worker.company, name="Rahim")
    CoachingRecipient.objects.create(run=runs[-1], company=worker.company, worker=other, status="skipped",
                                     reason="on_time")
    client.force_login(staff_user)
    html = client.get(reverse("admin:crm_worker_change", args=[worker.pk])).content.decode()
    listed = {row.pk for row in CoachingRecipient.objects.all() if f'id="coaching-{row.pk}"' in html}
    assert listed == {coached_row.pk, skipped[1].pk, skipped[2].pk}
