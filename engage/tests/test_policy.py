"""The per-company engagement policy: defaults, presets, cache and invalidation, the admin."""

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from crm.models import Membership
from crm.tests.factories import StaffUserFactory
from engage.models import CampaignPreset, EngagementPolicy
from engage.policy.services import FrequencyCaps, policy_for, policy_get_or_create


def test_defaults_follow_the_seed(company):
    policy = policy_for(company=company)

    assert policy.caps_for("customer") == FrequencyCaps(daily_limit=1, weekly_limit=2, min_hours_between=24)
    assert policy.caps_for("worker").weekly_limit == 1
    assert policy.caps_for("worker").min_hours_between == 72
    assert policy.attribution_window_hours == 72
    assert (policy.is_smartengage_enabled, policy.is_ai_generation_enabled, policy.is_safety_filter_enabled) == (True, True, True)
    assert {name: (p.cadence_days, p.batch_size, p.send_window) for name, p in policy.presets.items()} == {
        "default": (21, 100, "9-18"),
        "aggressive": (14, 200, "8-20"),
        "gentle": (28, 50, "10-17"),
        "weekend": (21, 150, "10-16"),
    }
    assert policy.preset().name == "default"
    with pytest.raises(ValueError):
        policy.caps_for("robot")


def test_policy_is_cached_and_a_save_takes_effect_on_the_next_read(company):
    policy_for(company=company)
    with CaptureQueriesContext(connection) as queries:
        policy_for(company=company)
    assert len(queries) == 0

    row = EngagementPolicy.objects.get(company=company)
    row.customer_daily_limit = 2
    row.customer_weekly_limit = 5
    row.save()
    assert policy_for(company=company).caps_for("customer").daily_limit == 2

    preset = CampaignPreset.objects.get(policy=row, name="gentle")
    preset.cadence_days = 30
    preset.save()
    assert policy_for(company=company).preset("gentle").cadence_days == 30

    preset.delete()
    assert "gentle" not in policy_for(company=company).presets


def test_policies_are_per_company(company, other_company):
    row = policy_get_or_create(company=other_company)
    row.is_smartengage_enabled = False
    row.save()

    assert policy_for(company=company).is_smartengage_enabled is True
    assert policy_for(company=other_company).is_smartengage_enabled is False


def test_one_policy_per_company(company):
    policy_get_or_create(company=company)

    with pytest.raises(IntegrityError):
        EngagementPolicy.objects.create(company=company)


def test_a_preset_window_must_end_after_it_starts(company):
    policy = policy_get_or_create(company=company)

    with pytest.raises(IntegrityError):
        CampaignPreset.objects.create(
            policy=policy, name="night", cadence_days=7, batch_size=10, send_window_start_hour=20, send_window_end_hour=8
        )


def test_admin_edits_take_effect_and_other_tenants_policies_are_hidden(client, company, other_company):
    alice = StaffUserFactory(email="alice.admin@alpha.test", is_superuser=False)
    alice.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="engage", codename__in=["view_engagementpolicy", "change_engagementpolicy",
                                                        "view_campaignpreset", "change_campaignpreset"]
    ))
    Membership.objects.create(user=alice, company=company, role=Membership.Role.OPERATIONS)
    own = policy_get_or_create(company=company)
    foreign = policy_get_or_create(company=other_company)
    policy_for(company=company)  # cached before the edit
    client.force_login(alice)

    listing = client.get("/admin/engage/engagementpolicy/")
    assert listing.status_code == 200
    assert f"/admin/engage/engagementpolicy/{own.pk}/change/" in listing.content.decode()
    assert f"/admin/engage/engagementpolicy/{foreign.pk}/change/" not in listing.content.decode()
    assert client.get(f"/admin/engage/engagementpolicy/{foreign.pk}/change/").status_code in (302, 404)

    presets = list(own.presets.order_by("id"))
    form = {
        "company": company.pk, "default_preset": "default", "attribution_window_hours": 48,
        "customer_daily_limit": 1, "customer_weekly_limit": 3, "customer_min_hours_between": 12,
        "worker_daily_limit": 1, "worker_weekly_limit": 1, "worker_min_hours_between": 72,
        "is_smartengage_enabled": "on", "is_coachnova_enabled": "on", "is_ai_generation_enabled": "on",
        "is_safety_filter_enabled": "on", "is_deeplink_enabled": "on",
        "presets-TOTAL_FORMS": len(presets), "presets-INITIAL_FORMS": len(presets),
        "presets-MIN_NUM_FORMS": 0, "presets-MAX_NUM_FORMS": 1000,
    }
    for index, preset in enumerate(presets):
        form.update({
            f"presets-{index}-id": preset.pk, f"presets-{index}-policy": own.pk, f"presets-{index}-name": preset.name,
            f"presets-{index}-cadence_days": preset.cadence_days, f"presets-{index}-window_days": preset.window_days,
            f"presets-{index}-batch_size": preset.batch_size,
            f"presets-{index}-send_window_start_hour": preset.send_window_start_hour,
            f"presets-{index}-send_window_end_hour": preset.send_window_end_hour,
        })
    response = client.post(f"/admin/engage/engagementpolicy/{own.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    snapshot = policy_for(company=company)
    assert snapshot.caps_for("customer") == FrequencyCaps(daily_limit=1, weekly_limit=3, min_hours_between=12)
    assert snapshot.attribution_window_hours == 48
