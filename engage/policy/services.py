"""Reading a company's engagement policy: a cached, immutable snapshot (`policy_for`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import IntegrityError, transaction

from crm.models import Company
from engage.policy.models import CampaignPreset, EngagementPolicy, policy_cache_invalidate, policy_cache_key

CACHE_TIMEOUT_SECONDS = 300
ROLE_CUSTOMER = "customer"
ROLE_WORKER = "worker"
ROLES = (ROLE_CUSTOMER, ROLE_WORKER)


@dataclass(frozen=True)
class FrequencyCaps:
    daily_limit: int
    weekly_limit: int
    min_hours_between: int


@dataclass(frozen=True)
class Preset:
    name: str
    cadence_days: int
    window_days: int
    batch_size: int
    send_window_start_hour: int
    send_window_end_hour: int

    @property
    def send_window(self) -> str:
        return f"{self.send_window_start_hour}-{self.send_window_end_hour}"


@dataclass(frozen=True)
class PolicySnapshot:
    company_id: int
    caps: dict[str, FrequencyCaps]
    is_smartengage_enabled: bool
    is_coachnova_enabled: bool
    is_ai_generation_enabled: bool
    is_safety_filter_enabled: bool
    is_deeplink_enabled: bool
    attribution_window_hours: int
    default_preset: str
    presets: dict[str, Preset] = field(default_factory=dict)

    def caps_for(self, role: str) -> FrequencyCaps:
        if role not in self.caps:
            raise ValueError(f"role must be one of {ROLES}")
        return self.caps[role]

    def preset(self, name: str | None = None) -> Preset:
        """The named preset (the policy's default when None); KeyError for an unknown name."""
        return self.presets[name or self.default_preset]


def policy_get_or_create(*, company: Company) -> EngagementPolicy:
    """The company's policy row, created with the seed defaults and presets on first use."""
    policy = EngagementPolicy.objects.filter(company=company).first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            policy = EngagementPolicy.objects.create(company=company)
            policy_presets_restore(company=company, policy=policy)
    except IntegrityError:  # created by a concurrent caller
        policy = EngagementPolicy.objects.get(company=company)
    return policy


def policy_presets_restore(*, company: Company, policy: EngagementPolicy | None = None) -> int:
    """Create the seed's default presets the policy lacks (by name); returns how many were created."""
    policy = policy or policy_get_or_create(company=company)
    existing = set(policy.presets.values_list("name", flat=True))
    created = CampaignPreset.objects.bulk_create(
        CampaignPreset(
            policy=policy, name=name, cadence_days=cadence, batch_size=batch,
            send_window_start_hour=start, send_window_end_hour=end,
        )
        for name, cadence, batch, start, end in CampaignPreset.DEFAULTS
        if name not in existing
    )
    policy_cache_invalidate(company_id=company.pk)
    return len(created)


def _snapshot(policy: EngagementPolicy) -> PolicySnapshot:
    presets = {
        preset.name: Preset(
            name=preset.name,
            cadence_days=preset.cadence_days,
            window_days=preset.window_days,
            batch_size=preset.batch_size,
            send_window_start_hour=preset.send_window_start_hour,
            send_window_end_hour=preset.send_window_end_hour,
        )
        for preset in policy.presets.all()
    }
    return PolicySnapshot(
        company_id=policy.company_id,
        caps={
            ROLE_CUSTOMER: FrequencyCaps(
                policy.customer_daily_limit, policy.customer_weekly_limit, policy.customer_min_hours_between
            ),
            ROLE_WORKER: FrequencyCaps(
                policy.worker_daily_limit, policy.worker_weekly_limit, policy.worker_min_hours_between
            ),
        },
        is_smartengage_enabled=policy.is_smartengage_enabled,
        is_coachnova_enabled=policy.is_coachnova_enabled,
        is_ai_generation_enabled=policy.is_ai_generation_enabled,
        is_safety_filter_enabled=policy.is_safety_filter_enabled,
        is_deeplink_enabled=policy.is_deeplink_enabled,
        attribution_window_hours=policy.attribution_window_hours,
        default_preset=policy.default_preset,
        presets=presets,
    )


def policy_for(*, company: Company) -> PolicySnapshot:
    """The company's policy as an immutable snapshot, from the cache when it is there."""
    key = policy_cache_key(company.pk)
    snapshot = cache.get(key)
    if snapshot is None:
        snapshot = _snapshot(policy_get_or_create(company=company))
        cache.set(key, snapshot, CACHE_TIMEOUT_SECONDS)
    return snapshot
