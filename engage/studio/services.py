"""The template studio's services and selectors: preview, save, publish, rollback, diff.

The admin views in `engage.studio.views` parse the request and call these. Versions stay
immutable: a save is a new draft (`template_version_create`); publish approves a draft; rollback
re-approves an earlier, previously published (now archived) version, so the version that goes out
again is byte for byte the one that went out before. Both are recorded in the crm Event timeline.
"""

from __future__ import annotations

import datetime
import difflib
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from jinja2 import TemplateSyntaxError, meta

from crm.models import Booking, Channel, Company, Customer, Lead, User, Worker
from crm.services import event_record
from engage.ai.client import NO_API_KEY_REASON, ai_config_for, ai_generate
from engage.ai.reasons import reason_advice
from engage.ai.safety import (
    LINK_PLACEHOLDER,
    MAX_LENGTH_BY_CHANNEL,
    SafetyVerdict,
    link_insert,
    safety_check,
    safety_policy_for,
    sms_segments,
)
from engage.ai.safety_context import SafetyContext
from engage.campaigns.deeplinks import SHORT_CODE_LENGTH, short_url
from engage.campaigns.segmentation import BOOKING_HISTORY_LENGTH, customer_booking_histories
from engage.campaigns.smartengage.planning import SHORT_LINK_CHANNELS, reminder_prompt_context
from engage.messaging.models import Message
from engage.prompts.models import PromptTemplate, PromptTemplateVersion
from engage.prompts.rendering import TEMPLATE_VARIABLES, _environment, template_render
from engage.prompts.services import template_version_approve, template_version_create

EVENT_PUBLISHED = "template.published"
EVENT_ROLLED_BACK = "template.rolled_back"
SUBJECT_SEARCH_LIMIT = 20
PREVIEW_PERIOD_DAYS = 30
# A reminder's link as each channel carries it: a short link on SMS and WhatsApp, the signed link
# (a sample as long as a real one) in email. The prompt holds LINK_PLACEHOLDER, as in a real send.
SAMPLE_SIGNED_LINK = "https://example.invalid/book?token=" + "x" * 200 + "&utm_source=smartengage&utm_medium=message"
PREVIEW_CHANNELS = (Channel.SMS, Channel.WHATSAPP_CLOUD, Channel.EMAIL)

# Which kind of person a template of each agent type is written for.
SUBJECT_KIND_BY_AGENT_TYPE = {"smartengage": "customer", "sales": "lead", "coachnova": "worker"}
MESSAGE_TYPE_BY_AGENT_TYPE = {"smartengage": "reminder", "sales": "reply", "coachnova": "coaching"}


@dataclass(frozen=True)
class Subject:
    """The person a preview renders for: a customer, lead or worker of the template's company."""

    kind: str
    pk: int
    label: str
    phone: str
    email: str
    context: dict[str, Any]
    name: str = ""
    # The prices the person's context gives the model (a customer's service price).
    prices: tuple = ()


# --- Reading ---------------------------------------------------------------------------------------


def template_variables_for(*, agent_type: str) -> list[dict[str, str]]:
    """The variables a template of `agent_type` may use, with their descriptions, in a stable order."""
    return [{"name": name, "description": text} for name, text in TEMPLATE_VARIABLES.get(agent_type, {}).items()]


def template_body_lint(*, agent_type: str, body: str) -> dict[str, Any]:
    """Syntax and variable check without raising: {"error", "line", "variables", "unknown"}."""
    declared = set(TEMPLATE_VARIABLES.get(agent_type, {}))
    try:
        used = set(meta.find_undeclared_variables(_environment.parse(body)))
    except TemplateSyntaxError as error:
        return {"error": _("Template syntax error on line %(line)d: %(message)s") % {"line": error.lineno, "message": error.message},
                "line": error.lineno,
                "variables": [], "unknown": []}
    return {"error": "", "line": None, "variables": sorted(used & declared), "unknown": sorted(used - declared)}


def template_versions(*, template: PromptTemplate) -> QuerySet[PromptTemplateVersion]:
    """The template's versions, newest first, with their people."""
    return template.versions.select_related("author", "approved_by").order_by("-number")


def template_version_get(*, template: PromptTemplate, number: Any) -> PromptTemplateVersion:
    """Version `number` of `template`; ValidationError when there is none."""
    try:
        return template.versions.select_related("author", "approved_by").get(number=int(number))
    except (TypeError, ValueError, PromptTemplateVersion.DoesNotExist):
        raise ValidationError({"version": _("No version %r of this template.") % number}) from None


def template_versions_diff(*, template: PromptTemplate, from_number: Any, to_number: Any) -> str:
    """A side-by-side HTML table (difflib) of two versions of `template`."""
    left = template_version_get(template=template, number=from_number)
    right = template_version_get(template=template, number=to_number)
    differ = difflib.HtmlDiff(tabsize=4, wrapcolumn=70)
    table = differ.make_table(
        left.body.splitlines(), right.body.splitlines(),
        fromdesc=f"v{left.number} ({left.status})", todesc=f"v{right.number} ({right.status})",
    )
    # difflib's navigation column ("f", "n", "t" links) reads as stray letters: keep the cells, drop the links.
    return _DIFF_NAVIGATION.sub(r"\1\2", table)


_DIFF_NAVIGATION = re.compile(r'(<td class="diff_next"[^>]*>).*?(</td>)')


def subjects_search(*, company: Company, agent_type: str, query: str = "") -> list[dict[str, Any]]:
    """Up to 20 customers, leads or workers (by the agent type) of `company` matching `query` (name or phone)."""
    kind = SUBJECT_KIND_BY_AGENT_TYPE.get(agent_type)
    model = {"customer": Customer, "lead": Lead, "worker": Worker}.get(kind or "")
    if model is None:
        return []
    rows = model.objects.filter(company=company).select_related("contact")
    query = query.strip()
    if query:
        rows = rows.filter(Q(contact__name__icontains=query) | Q(contact__phone__contains=query))
    return [{"id": row.pk, "label": _label(row.contact)} for row in rows.order_by("-id")[:SUBJECT_SEARCH_LIMIT]]


def _label(contact) -> str:
    return f"{contact.name or 'No name'} ({contact.phone or contact.email or 'no phone'})"


def subject_for(*, company: Company, agent_type: str, subject_id: Any = None) -> Subject:
    """The preview person with the template variables filled from their data; sample values without one."""
    kind = SUBJECT_KIND_BY_AGENT_TYPE.get(agent_type, "")
    if subject_id in (None, ""):
        context = {name: f"[{name}]" for name in TEMPLATE_VARIABLES.get(agent_type, {})}
        context["company_name"] = company.name
        return Subject(kind=kind, pk=0, label=_("Sample values"), phone="", email="", context=context)
    try:
        subject_pk = int(subject_id)
    except (TypeError, ValueError):
        raise ValidationError({"subject_id": _("Pick a person from the list.")}) from None
    builder = {"customer": _customer_subject, "lead": _lead_subject, "worker": _worker_subject}[kind]
    subject = builder(company=company, pk=subject_pk)
    if subject is None:
        # Another company's person answers like no person at all.
        raise ValidationError({"subject_id": _("No %(kind)s %(id)s in this company.") % {"kind": kind, "id": subject_pk}})
    return subject


def _customer_subject(*, company: Company, pk: int) -> Subject | None:
    customer = Customer.objects.filter(company=company, pk=pk).select_related("contact").first()
    if customer is None:
        return None

    now = timezone.now()
    history = customer_booking_histories(customer_ids=[customer.pk], limit=BOOKING_HISTORY_LENGTH).get(customer.pk, [])
    service = history[0].service if history else None
    context = reminder_prompt_context(
        company=company, customer=customer, service=service, history=history, now=now, promo_code="",
        channel=Channel.SMS, sms_max_segments=ai_config_for(company=company).sms_max_segments,
    )
    contact = customer.contact
    prices = (service.base_price,) if service is not None and service.base_price else ()
    return Subject("customer", customer.pk, _label(contact), contact.phone, contact.email, context,
                   name=contact.name, prices=prices)


def _lead_subject(*, company: Company, pk: int) -> Subject | None:
    lead = Lead.objects.filter(company=company, pk=pk).select_related("contact", "stage").first()
    if lead is None:
        return None
    last_message = (
        Message.objects.filter(lead=lead, direction=Message.Direction.INBOUND)
        .order_by("-created_at", "-id").values_list("body", flat=True).first()
    )
    context = {
        "company_name": company.name,
        "contact_name": lead.contact.name,
        "stage": lead.stage.name if lead.stage_id else "",
        "summary": lead.summary,
        "last_message": last_message or "",
        "channel": lead.channel,
        "step_number": 1,
    }
    return Subject("lead", lead.pk, _label(lead.contact), lead.contact.phone, lead.contact.email, context,
                   name=lead.contact.name)


def _worker_subject(*, company: Company, pk: int) -> Subject | None:
    worker = Worker.objects.filter(company=company, pk=pk).select_related("contact").first()
    if worker is None:
        return None
    since = timezone.now() - datetime.timedelta(days=PREVIEW_PERIOD_DAYS)
    late = Q(arrived_at__gt=F("scheduled_at"))
    figures = Booking.objects.filter(worker=worker, scheduled_at__gte=since, arrived_at__isnull=False).aggregate(
        total=Count("id"), late=Count("id", filter=late), delay=Avg(F("arrived_at") - F("scheduled_at"), filter=late),
    )
    total, late_count = figures["total"], figures["late"]
    delay = figures["delay"]
    context = {
        "company_name": company.name,
        "worker_name": worker.contact.name,
        "on_time_rate": round(100 * (total - late_count) / total) if total else 100,
        "late_count": late_count,
        "average_delay_minutes": round(delay.total_seconds() / 60) if delay else 0,
        "period_days": PREVIEW_PERIOD_DAYS,
    }
    return Subject("worker", worker.pk, _label(worker.contact), worker.contact.phone, worker.contact.email, context,
                   name=worker.contact.name)


def _sample_link(channel: str) -> str:
    return short_url(code="x" * SHORT_CODE_LENGTH) if channel in SHORT_LINK_CHANNELS else SAMPLE_SIGNED_LINK


NO_SAMPLE_NOTE = gettext_lazy(
    "Type a sample message or generate one with the model: the safety filter judges a message, never the prompt."
)


def _channel_report(
    *, texts: dict[str, str], verdicts: dict[str, SafetyVerdict | None], sms_max_segments: int
) -> list[dict[str, Any]]:
    report = []
    for channel in PREVIEW_CHANNELS:
        text, verdict = texts.get(channel, ""), verdicts.get(channel)
        if verdict is None:  # nothing to judge yet
            row = {"length": None, "limit": f"{sms_max_segments} SMS segments" if channel == Channel.SMS
                   else f"{MAX_LENGTH_BY_CHANNEL.get(channel, 4096)} characters", "is_within_limit": None}
        elif channel == Channel.SMS:
            segments = sms_segments(text)
            row = {"length": len(text), "limit": f"{sms_max_segments} SMS segments", "segments": segments,
                   "is_within_limit": segments <= sms_max_segments}
        else:
            limit = MAX_LENGTH_BY_CHANNEL.get(channel, 4096)
            row = {"length": len(text), "limit": f"{limit} characters", "is_within_limit": len(text) <= limit}
        reasons = [{**reason.as_dict(), "advice": reason_advice(reason.code)} for reason in verdict.reasons] if verdict else []
        report.append({"channel": channel, "label": Channel(channel).label, **row,
                       "is_safe": verdict.is_ok if verdict else None,
                       "reason": (verdict.reason or "") if verdict else "", "reasons": reasons})
    return report


def _preview_safety_context(*, template: PromptTemplate, subject: Subject, rendered: str) -> SafetyContext:
    return SafetyContext(
        recipient_name=subject.name, recipient_phone=subject.phone, recipient_email=subject.email,
        message_type=MESSAGE_TYPE_BY_AGENT_TYPE.get(template.agent_type, "reply"), prices=subject.prices,
        promo_codes=(subject.context["promo_code"],) if subject.context.get("promo_code") else (),
        instructions=rendered, brand=template.company.name,
    )


def template_preview(
    *, template: PromptTemplate, body: str, subject_id: Any = None, sample_output: str = ""
) -> dict[str, Any]:
    """Render `body` for a person of the template's company; the safety verdict and length per channel.

    The verdict is on `sample_output` (a model sample or the marketer's own text) as each channel would
    send it, never on the rendered prompt: with no sample there is no verdict (`note` says so). Every
    reason is listed with its advice. ValidationError (with the line) on a syntax error or unknown variable.
    """
    lint = template_body_lint(agent_type=template.agent_type, body=body)
    if lint["error"]:
        raise ValidationError({"body": lint["error"]})
    subject = subject_for(company=template.company, agent_type=template.agent_type, subject_id=subject_id)
    rendered = template_render(body=body, agent_type=template.agent_type, context=subject.context)
    checked = sample_output.strip()
    policy = safety_policy_for(company=template.company)
    texts: dict[str, str] = {}
    verdicts: dict[str, SafetyVerdict | None] = {}
    if checked:
        context = _preview_safety_context(template=template, subject=subject, rendered=rendered)
        # A reminder is judged as it is sent: with its channel's link in (see _sample_link).
        for channel in PREVIEW_CHANNELS:
            link = _sample_link(channel) if "deep_link" in subject.context else None
            texts[channel] = checked if link is None else link_insert(text=checked, link=link)
            verdicts[channel] = safety_check(
                text=texts[channel], policy=policy, channel=channel, locale=template.locale, link=link,
                context=context, draft=checked if link is not None else None,
            )
    return {
        "rendered": rendered,
        "variables": lint["variables"],
        "subject": {"kind": subject.kind, "id": subject.pk or None, "label": subject.label},
        "checked_text": checked,
        "checked_is_sample": bool(checked),
        "note": "" if checked else str(NO_SAMPLE_NOTE),
        "channels": _channel_report(texts=texts, verdicts=verdicts, sms_max_segments=policy.sms_max_segments),
    }


def template_sample_generate(
    *, template: PromptTemplate, body: str, subject_id: Any = None, channel: str = Channel.SMS
) -> dict[str, Any]:
    """A sample answer of the model to the rendered template (or the approved fallback when none is configured).

    A reminder's sample keeps LINK_PLACEHOLDER where the model put the link, so the preview can put
    each channel's link there; the text is judged as the send would judge it, every reason returned.
    """

    preview = template_preview(template=template, body=body, subject_id=subject_id)
    subject = subject_for(company=template.company, agent_type=template.agent_type, subject_id=subject_id)
    contact = None
    if subject.pk:
        model = {"customer": Customer, "lead": Lead, "worker": Worker}[subject.kind]
        contact = model.objects.select_related("contact").get(pk=subject.pk).contact
    link = _sample_link(channel) if "deep_link" in subject.context else None
    context = _preview_safety_context(template=template, subject=subject, rendered=preview["rendered"])
    result = ai_generate(
        company=template.company, agent_type=template.agent_type, purpose="studio_preview",
        messages=[{"role": "user", "content": preview["rendered"]}],
        message_type=MESSAGE_TYPE_BY_AGENT_TYPE.get(template.agent_type, "reply"),
        locale=template.locale, channel=channel, contact=contact, link=link, safety_context=context,
        fallback_context={key: subject.context.get(key, "") for key in ("service_name_bn", "service_name", "promo_code")},
    )
    text = result.text.replace(link, LINK_PLACEHOLDER) if link else result.text
    return {
        "text": text,
        "outcome": result.outcome,
        "is_fallback": result.is_fallback,
        "is_model_configured": result.reason != NO_API_KEY_REASON,
        "reason": result.reason,
        "reasons": [{**item, "advice": reason_advice(item["code"])} for item in result.safety.get("reasons", [])],
    }


# --- Writing ---------------------------------------------------------------------------------------


def template_draft_save(*, template: PromptTemplate, body: str, author: User) -> PromptTemplateVersion:
    """Save `body` as a new draft version (never an edit); an unchanged body of the newest version is refused."""

    if not body.strip():
        raise ValidationError({"body": _("The template is empty.")})
    newest = template.versions.order_by("-number").values_list("body", flat=True).first()
    if newest is not None and newest == body:
        raise ValidationError({"body": _("Nothing changed since the newest version.")})
    return template_version_create(template=template, body=body, author=author)


@transaction.atomic
def template_publish(*, version: PromptTemplateVersion, actor: User) -> PromptTemplateVersion:
    """Make a draft the approved version campaigns and replies use; recorded as `template.published`."""

    version = PromptTemplateVersion.objects.select_for_update().select_related("template__company").get(pk=version.pk)
    if version.status != PromptTemplateVersion.Status.DRAFT:
        raise ValidationError({"version": f"v{version.number} is {version.status}: only a draft can be published."})
    return _approve_recorded(version=version, actor=actor, event_type=EVENT_PUBLISHED,
                             approve=template_version_approve)


@transaction.atomic
def template_rollback(*, version: PromptTemplateVersion, actor: User) -> PromptTemplateVersion:
    """Make an earlier, once-published version the approved one again; recorded as `template.rolled_back`."""

    version = PromptTemplateVersion.objects.select_for_update().select_related("template__company").get(pk=version.pk)
    if version.status != PromptTemplateVersion.Status.ARCHIVED:
        raise ValidationError(
            {"version": f"v{version.number} is {version.status}: roll back only to a version that was published before."}
        )
    return _approve_recorded(version=version, actor=actor, event_type=EVENT_ROLLED_BACK,
                             approve=template_version_approve)


def _approve_recorded(*, version: PromptTemplateVersion, actor: User, event_type: str, approve) -> PromptTemplateVersion:
    template = version.template
    previous = template.versions.filter(status=PromptTemplateVersion.Status.APPROVED).values_list("number", flat=True)
    previous_number = previous.first()
    version = approve(version=version, actor=actor)
    event_record(
        company=template.company, type=event_type, target=version, source="admin", actor=actor,
        payload={"template_id": template.pk, "template": template.name, "agent_type": template.agent_type,
                 "locale": template.locale, "version": version.number, "previous_version": previous_number},
    )
    return version
