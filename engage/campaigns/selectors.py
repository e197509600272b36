"""Reads of campaigns: what a run did, counted so that its numbers add up, and when its send window opens."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.utils import timezone

from engage.campaigns.models import CampaignRecipient, CampaignRun
from engage.campaigns.segmentation import SegmentCriteria, contact_zones, customer_segment, customer_segment_skips
from engage.policy.services import policy_for

Reason = CampaignRecipient.Reason
Status = CampaignRecipient.Status
# Left out by the eligibility rules (the segment's skip records, or the reservation at send time).
RULE_REASONS = (Reason.NO_CONSENT, Reason.NO_ADDRESS, Reason.TOO_SOON, Reason.DAILY_CAP, Reason.WEEKLY_CAP)


@dataclass(frozen=True)
class SendWindow:
    """A run's send window and, while customers wait outside it, when it next opens in the company's zone."""

    start_hour: int
    end_hour: int
    zone: str
    outside: int  # eligible customers skipped because their local hour was outside it
    next_opens_at: dt.datetime | None  # in `zone`; None when the window is open now or covers the whole day
    is_ignored: bool = False  # a dry run that previewed everyone whatever their hour
    set_aside: tuple[int, int] | None = None  # the preset's window such a dry run set aside

    @property
    def label(self) -> str:
        return f"{self.start_hour:02d}:00-{self.end_hour:02d}:00"


@dataclass(frozen=True)
class RunSummary:
    """considered = left out by the rules + eligible; eligible = sent + failed + pending + rendered + skipped
    at send time. Every customer the run looked at is in exactly one of those."""

    considered: int
    left_out: dict[str, int] = field(default_factory=dict)  # rule reason -> customers
    sent: int = 0
    failed: int = 0
    pending: int = 0
    rendered: int = 0
    skipped_at_send: dict[str, int] = field(default_factory=dict)  # reason -> customers
    fallbacks: dict[str, int] = field(default_factory=dict)  # sent or rendered with the approved fallback, why
    send_window: SendWindow | None = None

    @property
    def left_out_total(self) -> int:
        return sum(self.left_out.values())

    @property
    def eligible(self) -> int:
        return self.considered - self.left_out_total

    @property
    def skipped_at_send_total(self) -> int:
        return sum(self.skipped_at_send.values())


def send_window_next_opening(*, start_hour: int, end_hour: int, zone: ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    """When a daily window [start_hour, end_hour) next opens in `zone`; None while it is open (or always open)."""
    if start_hour <= 0 and end_hour >= 24:
        return None
    local = now.astimezone(zone)
    if start_hour <= local.hour < end_hour:
        return None
    opening = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    if local.hour >= end_hour or opening <= local:
        opening += dt.timedelta(days=1)  # wall-clock arithmetic: zoneinfo works the offset out for that day
    return opening


def campaign_run_summary(*, run: CampaignRun, now: dt.datetime | None = None) -> RunSummary:
    """The run's customers by what happened to them (one grouped query over its recipients)."""
    rows = (
        CampaignRecipient.objects.filter(run_id=run.pk).values_list("status", "reason").annotate(count=Count("pk"))
    )
    considered = 0
    left_out: dict[str, int] = {}
    skipped: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    by_status = {status: 0 for status in Status.values}
    for status, reason, count in rows:
        considered += count
        if status == Status.SKIPPED and reason in RULE_REASONS:
            left_out[reason] = left_out.get(reason, 0) + count
            continue
        if status == Status.SKIPPED:
            skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + count
            continue
        by_status[status] += count
        if reason in CampaignRecipient.FALLBACK_REASONS:
            fallbacks[reason] = fallbacks.get(reason, 0) + count
    preset = run.preset or {}
    window = None
    if "send_window_start_hour" in preset:
        zone = ZoneInfo(run.campaign.company.timezone or "Asia/Dhaka")
        start, end = int(preset["send_window_start_hour"]), int(preset["send_window_end_hour"])
        outside = skipped.get(Reason.OUTSIDE_SEND_WINDOW, 0)
        set_aside = preset.get("send_window_set_aside")
        window = SendWindow(
            start_hour=start, end_hour=end, zone=str(zone), outside=outside,
            next_opens_at=send_window_next_opening(start_hour=start, end_hour=end, zone=zone, now=now or timezone.now())
            if outside else None,
            is_ignored=bool(preset.get("ignores_send_window")),
            set_aside=tuple(set_aside) if set_aside else None,
        )
    return RunSummary(
        considered=considered, left_out=left_out, sent=by_status[Status.SENT], failed=by_status[Status.FAILED],
        pending=by_status[Status.PENDING], rendered=by_status[Status.DRY_RUN], skipped_at_send=skipped,
        fallbacks=fallbacks, send_window=window,
    )


AUDIENCE_COUNT_LIMIT = 10_000


@dataclass(frozen=True)
class AudienceEstimate:
    """Who a run of the campaign would reach now: each count exact up to `limit` (`is_partial` past it)."""

    eligible_now: int
    outside_window: int
    capped: int
    no_consent: int
    other_skips: int
    limit: int
    is_partial: bool


def campaign_audience_estimate(*, campaign, now: dt.datetime | None = None,
                               limit: int = AUDIENCE_COUNT_LIMIT) -> AudienceEstimate:
    """Before a run: eligible now, eligible but outside the send window, capped, without consent.

    The same segment and rules as a run (engage.campaigns.segmentation), read and counted, nothing written;
    at most `limit` candidates are read.
    """
    now = now or timezone.now()
    preset = policy_for(company=campaign.company).preset(campaign.preset)
    zones = contact_zones(company=campaign.company)
    windowed = SegmentCriteria.from_preset(preset, channel=campaign.channel)
    whole_day = SegmentCriteria(
        cadence_days=preset.cadence_days, window_days=preset.window_days, send_window_start_hour=0,
        send_window_end_hour=24, channel=campaign.channel,
    )
    reasons = list(
        customer_segment_skips(company=campaign.company, criteria=whole_day, now=now, zones=zones)
        .order_by("id").values_list("skip_reason", flat=True)[: limit + 1]
    )
    is_partial = len(reasons) > limit
    reasons = reasons[:limit]
    eligible_any_hour = sum(1 for reason in reasons if reason is None)
    eligible_now = customer_segment(
        company=campaign.company, criteria=windowed, now=now, zones=zones, limit=limit
    ).count()
    Reason = CampaignRecipient.Reason
    capped = sum(1 for reason in reasons if reason in (Reason.DAILY_CAP, Reason.WEEKLY_CAP))
    no_consent = sum(1 for reason in reasons if reason in (Reason.NO_CONSENT, Reason.NO_ADDRESS))
    other = sum(1 for reason in reasons if reason is not None) - capped - no_consent
    return AudienceEstimate(
        eligible_now=eligible_now, outside_window=max(eligible_any_hour - eligible_now, 0), capped=capped,
        no_consent=no_consent, other_skips=other, limit=limit, is_partial=is_partial,
    )
