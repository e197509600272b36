"""A batch of customers end to end (planned, generated, written, sent), one customer, bulk, and the batches
of a campaign run with the next batch's model calls in flight while this one is sent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from crm.models import Channel, Company, Customer, Service, User
from engage.campaigns.models import CampaignRecipient, CampaignRun
from engage.campaigns.smartengage.generation import Generation, generation_finish, generation_start
from engage.campaigns.smartengage.intents import QueuedReminder, intents_write, recipient_rows_insert
from engage.campaigns.smartengage.outcomes import (
    DRY_RUN,
    SKIPPED,
    BulkResult,
    Plan,
    RecipientRow,
    ReminderOutcome,
)
from engage.campaigns.smartengage.planning import SHORT_LINK_CHANNELS, links_shorten, plans_make
from engage.campaigns.smartengage.sending import reminder_send_queued
from shokti.metrics import count


def smartengage_reminders_process(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
) -> list[ReminderOutcome]:
    """The workflow for a batch of customers of `company`: AI calls concurrent, the batch's intents in one transaction."""
    return reminders_finish(reminders_start(
        company=company, customers=customers, channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps, dry_run=dry_run, run=run,
        send_window=send_window,
    ))


@dataclass
class StartedBatch:
    """A batch whose plans are made and whose model calls are in flight."""

    company: Company
    customers: Sequence[Customer]
    plans: list[Plan]
    generation: Generation | None
    dry_run: bool
    run: CampaignRun | None
    bypass_frequency_caps: bool


def reminders_start(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str,
    service: Service | None,
    promo_code: str,
    ttl_hours: int | None,
    bypass_frequency_caps: bool,
    dry_run: bool,
    run: CampaignRun | None,
    send_window: tuple[int, int] | None,
) -> StartedBatch:
    if channel not in Channel.values:
        raise ValidationError({"channel": f"Unknown channel {channel!r}."})
    plans = plans_make(
        company=company, customers=customers, channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps, send_window=send_window,
        is_segmented=run is not None, campaign_id=run.campaign_id if run is not None else None,
        records_exposure=not dry_run,
    )
    if channel in SHORT_LINK_CHANNELS:
        links_shorten(company=company, plans=plans, ttl_hours=ttl_hours, save=not dry_run)
    return StartedBatch(
        company=company, customers=customers, plans=plans,
        generation=generation_start(plans=plans, dry_run=dry_run),
        dry_run=dry_run, run=run, bypass_frequency_caps=bypass_frequency_caps,
    )


def reminders_finish(
    started: StartedBatch, *, rows_sink: Callable[[list[RecipientRow]], None] | None = None
) -> list[ReminderOutcome]:
    """Steps 8-10 for a started batch. A run's skipped and dry-run recipients are written here, or handed
    to `rows_sink` (a dry run's runner writes them with the batch's other records)."""
    company, plans, dry_run, run = started.company, started.plans, started.dry_run, started.run
    bypass_frequency_caps = started.bypass_frequency_caps
    generation_finish(started.generation)
    outcomes: list[ReminderOutcome | None] = []
    skipped_rows = []
    to_send: list[tuple[int, Plan]] = []
    for plan in plans:
        # A blocked text (not even the approved fallback with the link passes the filter) is not sent,
        # in a dry run either: the outcome keeps the text and both verdicts; the next run tries again.
        is_skip = plan.is_blocked or plan.reason in CampaignRecipient.SKIP_REASONS
        if is_skip:
            count("campaign_recipients_skipped_total", reason=plan.reason)
            outcome = ReminderOutcome(
                customer_id=plan.customer.pk, status=SKIPPED, reason=plan.reason, correlation_id=str(plan.correlation_id),
                body=plan.text if plan.is_blocked else "", error=plan.note if plan.is_blocked else "",
                template_version_id=plan.version.pk if plan.is_blocked and plan.version else None,
            )
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.SKIPPED, plan.reason, outcome.error))
        elif dry_run:
            outcome = ReminderOutcome(
                customer_id=plan.customer.pk,
                status=DRY_RUN,
                reason=plan.reason,
                correlation_id=str(plan.correlation_id),
                body=plan.text,
                template_version_id=plan.version.pk if plan.version else None,
                error=plan.note,
            )
            if run is not None:
                skipped_rows.append((plan, CampaignRecipient.Status.DRY_RUN, plan.reason, plan.note))
        else:
            to_send.append((len(outcomes), plan))
            outcome = None
        outcomes.append(outcome)
    if skipped_rows and rows_sink is not None:
        rows_sink(skipped_rows)
    elif skipped_rows:
        recipient_rows_insert(run=run, rows=skipped_rows, now=timezone.now())
    for index, outcome in send_all(company=company, to_send=to_send, run=run, bypass=bypass_frequency_caps):
        outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


def send_all(
    *, company: Company, to_send: list[tuple[int, Plan]], run: CampaignRun | None, bypass: bool
) -> Iterable[tuple[int, ReminderOutcome]]:
    """Write the batch's intents in one transaction, then run the sends, SMARTENGAGE_SEND_CONCURRENCY at a time.

    Each sending thread keeps its own connection for its share of the batch. Inside an outer
    transaction (a test's, or a caller's) another connection could not see the uncommitted rows,
    so the sends then run one by one on this connection.
    """
    if not to_send:
        return
    skipped, queued = intents_write(company=company, to_send=to_send, run=run, bypass_frequency_caps=bypass)
    yield from skipped
    workers = min(int(getattr(settings, "SMARTENGAGE_SEND_CONCURRENCY", 4)), len(queued))
    if workers <= 1 or connection.in_atomic_block:
        for item in queued:
            yield item.index, reminder_send_queued(item=item)
        return

    def send_share(share: list[QueuedReminder]) -> list[tuple[int, ReminderOutcome]]:
        try:
            return [(item.index, reminder_send_queued(item=item)) for item in share]
        finally:
            connection.close()  # this thread's own connection, once for its whole share

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartengage-send") as pool:
        for results in pool.map(send_share, [queued[offset::workers] for offset in range(workers)]):
            yield from results


def smartengage_reminder_send(
    *,
    company: Company,
    customer: Customer,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    channel: str = Channel.EMAIL,
    bypass_frequency_caps: bool = False,
    actor: User | None = None,
) -> ReminderOutcome:
    """Send one reminder to one customer now (the admin's send-single)."""
    if customer.company_id != company.pk or (service is not None and service.company_id != company.pk):
        raise ValidationError({"customer_id": "Unknown customer."})
    (outcome,) = smartengage_reminders_process(
        company=company, customers=[customer], channel=channel, service=service, promo_code=promo_code,
        ttl_hours=ttl_hours, bypass_frequency_caps=bypass_frequency_caps,
    )
    return outcome


def smartengage_bulk_send(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    batch_size: int = 100,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
) -> BulkResult:
    """Remind many customers, `batch_size` at a time (the AI calls of a batch run concurrently)."""
    started = time.monotonic()
    result = BulkResult(total_eligible=len(customers))
    size = max(1, batch_size)
    for _, outcomes in smartengage_batches_send(
        company=company, batches=(customers[start : start + size] for start in range(0, len(customers), size)),
        channel=channel, service=service, promo_code=promo_code, ttl_hours=ttl_hours,
        bypass_frequency_caps=bypass_frequency_caps, dry_run=dry_run, run=run, send_window=send_window,
    ):
        for outcome in outcomes:
            result.add(outcome)
    result.duration_seconds = time.monotonic() - started
    return result


def smartengage_batches_send(
    *,
    company: Company,
    batches: Iterable[Sequence[Customer]],
    channel: str = Channel.EMAIL,
    service: Service | None = None,
    promo_code: str = "",
    ttl_hours: int | None = None,
    bypass_frequency_caps: bool = False,
    dry_run: bool = False,
    run: CampaignRun | None = None,
    send_window: tuple[int, int] | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    rows_sink: Callable[[list[RecipientRow]], None] | None = None,
) -> Iterator[tuple[Sequence[Customer], list[ReminderOutcome]]]:
    """Process batch after batch, yielding each batch's outcomes; the next batch's model calls are in flight
    while this one's intents are written and its messages sent (the model's latency overlaps our work).

    `is_cancelled` is asked before each batch is started and before a started batch is sent: a
    cancelled run sends nothing more (a started batch is dropped, its model calls unrecorded).
    `rows_sink` gets each batch's skipped and dry-run recipient rows before the batch is yielded
    (see `reminders_finish`).
    """
    options = {
        "company": company, "channel": channel, "service": service, "promo_code": promo_code,
        "ttl_hours": ttl_hours, "bypass_frequency_caps": bypass_frequency_caps, "dry_run": dry_run, "run": run,
        "send_window": send_window,
    }
    pending: StartedBatch | None = None
    for customers in batches:
        if is_cancelled is not None and is_cancelled():
            break
        started = reminders_start(customers=customers, **options)
        if pending is not None:
            yield pending.customers, reminders_finish(pending, rows_sink=rows_sink)
        pending = started
    if pending is not None and not (is_cancelled is not None and is_cancelled()):
        yield pending.customers, reminders_finish(pending, rows_sink=rows_sink)
