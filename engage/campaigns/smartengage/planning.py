"""Steps 1-4: consent and caps, context, booking history and the prompt from the approved templates; the
signed booking link (or its short link)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Channel, Company, Customer, Service
from engage.ai.bengali import first_name, money_bn, number_bn
from engage.ai.client import (
    GenerationRequest,
)
from engage.ai.config import ai_config_for
from engage.ai.safety import LINK_PLACEHOLDER
from engage.ai.safety_context import SafetyContext
from engage.campaigns.deeplinks import deeplink_booking_create, deeplink_promo_create, short_links_create
from engage.campaigns.segmentation import booking_history_text, customer_booking_histories
from engage.campaigns.smartengage.outcomes import AGENT_TYPE, MESSAGE_TYPE, Plan, Reason
from engage.experiments.send_time import best_hours
from engage.experiments.services import experiment_exposures
from engage.policy.consent import can_send, contact_zone
from engage.policy.services import ROLE_CUSTOMER, policy_for
from engage.prompts.defaults import SYSTEM_TEMPLATE_NAME, USER_TEMPLATE_NAME
from engage.prompts.models import PromptTemplate, PromptTemplateVersion
from engage.prompts.rendering import template_latest_approved, template_render, template_variables_check
from engage.prompts.services import templates_seed_defaults


def consent_and_caps_reason(*, customer: Customer, channel: str, bypass_frequency_caps: bool) -> str:
    """"" when the customer may get a reminder on `channel` now, else the skip reason (nothing reserved)."""
    decision = can_send(
        contact=customer.contact, channel=channel, role=ROLE_CUSTOMER, bypass_caps=bypass_frequency_caps
    )
    return "" if decision.allowed else str(decision.reason)


def smartengage_templates(*, company: Company, locale: str) -> tuple[PromptTemplateVersion | None, PromptTemplateVersion]:
    """The approved (system, user) reminder template versions; ValidationError when no user template is approved."""
    user = template_latest_approved(company=company, agent_type=AGENT_TYPE, locale=locale, name=USER_TEMPLATE_NAME)
    if user is None and locale == "bn" and not PromptTemplate.objects.filter(
        company=company, agent_type=AGENT_TYPE, name=USER_TEMPLATE_NAME
    ).exists():
        # A company created after migration 0007 gets the v1 defaults on first use; one whose
        # marketers archived them does not (that is their decision).

        templates_seed_defaults(company=company)
        user = template_latest_approved(company=company, agent_type=AGENT_TYPE, locale=locale, name=USER_TEMPLATE_NAME)
    if user is None and locale != "bn":
        return smartengage_templates(company=company, locale="bn")
    if user is None:
        raise ValidationError(
            {"template": f"No approved SmartEngage reminder template ({USER_TEMPLATE_NAME}/{locale}) for this company."}
        )
    system = template_latest_approved(
        company=company, agent_type=AGENT_TYPE, locale=user.template.locale, name=SYSTEM_TEMPLATE_NAME
    )
    return system, user


def link_for(*, plan: Plan, promo_code: str, ttl_hours: int | None, is_deeplink_enabled: bool) -> str:
    if not is_deeplink_enabled:
        return ""
    if plan.service is None and promo_code:
        return deeplink_promo_create(
            customer=plan.customer, promo_code=promo_code, ttl_hours=ttl_hours, correlation_id=plan.correlation_id
        )
    return deeplink_booking_create(
        customer=plan.customer, service=plan.service, promo_code=promo_code, ttl_hours=ttl_hours,
        correlation_id=plan.correlation_id,
    )


# A signed link is 250-310 characters: an SMS (70 Bengali characters a segment) or a WhatsApp text
# carries a short link to it instead (engage.campaigns.models); email keeps the signed link.
SHORT_LINK_CHANNELS = frozenset({Channel.SMS, Channel.WHATSAPP_CLOUD, Channel.WHATSAPP_WEB})


def links_shorten(*, company: Company, plans: list[Plan], ttl_hours: int | None, save: bool) -> None:
    """Swap each plan's signed link for a short one (one INSERT for the batch; none saved in a dry run)."""

    linked = [plan for plan in plans if plan.link]
    urls = short_links_create(
        company=company, links=[(plan.link, plan.correlation_id) for plan in linked], ttl_hours=ttl_hours, save=save
    )
    for plan, url in zip(linked, urls, strict=True):
        plan.link = url
        if plan.request is not None:
            plan.request.link = url


CHANNEL_NAMES_BN = {
    Channel.SMS: "এসএমএস", Channel.EMAIL: "ইমেইল", Channel.WHATSAPP_CLOUD: "হোয়াটসঅ্যাপ",
    Channel.WHATSAPP_WEB: "হোয়াটসঅ্যাপ", Channel.CONSOLE: "বার্তা",
}
# Characters the model may write, without the link: SMS is what the company's segments hold in UCS-2
# (67 a part) less the short link and its line break; WhatsApp and email a short, readable message.
TEXT_LENGTH_BY_CHANNEL = {Channel.EMAIL: 600, Channel.WHATSAPP_CLOUD: 400, Channel.WHATSAPP_WEB: 400}
SHORT_LINK_LENGTH = 34


def reminder_max_characters(*, channel: str, sms_max_segments: int) -> int:
    """How long the model's text may be on `channel` (the link left out)."""
    if channel == Channel.SMS:
        return max(60, sms_max_segments * 67 - SHORT_LINK_LENGTH - 1) if sms_max_segments > 1 else 70 - SHORT_LINK_LENGTH
    return TEXT_LENGTH_BY_CHANNEL.get(channel, 400)


def reminder_prompt_context(
    *,
    company: Company,
    customer: Customer,
    service: Service | None,
    history: list,
    now: Any,
    promo_code: str,
    channel: str,
    sms_max_segments: int,
) -> dict[str, Any]:
    """The reminder template's variables for one customer: names, the service and its price, days and
    history in Bengali digits and dates, the channel and its length, the link placeholder."""
    last = history[0] if history else None
    last_at = customer.last_booking_at or (last.finished_at if last else None)
    name = customer.contact.name or ""
    return {
        "company_name": company.name,
        "customer_name": name,
        "customer_first_name": first_name(name),
        "service_name": service.name if service else "",
        "service_name_bn": (service.name_bn or service.name) if service else "আমাদের সার্ভিস",
        "service_price": money_bn(service.base_price) if service and service.base_price else "",
        "days_since_last_booking": number_bn((now - last_at).days) if last_at else "",
        "booking_history": booking_history_text(
            bookings=history, now=now, zone=contact_zone(contact=customer.contact)
        ),
        "promo_code": promo_code,
        "channel_name_bn": CHANNEL_NAMES_BN.get(channel, "বার্তা"),
        "max_characters": number_bn(reminder_max_characters(channel=channel, sms_max_segments=sms_max_segments)),
        "deep_link": LINK_PLACEHOLDER,
    }


def plans_make(
    *,
    company: Company,
    customers: Sequence[Customer],
    channel: str,
    service: Service | None,
    promo_code: str,
    ttl_hours: int | None,
    bypass_frequency_caps: bool,
    send_window: tuple[int, int] | None = None,
    is_segmented: bool = False,
    campaign_id: int | None = None,
    records_exposure: bool = True,
) -> list[Plan]:
    """Steps 1-4 and the prompt for each customer (skips get their reason and no prompt).

    Under a running experiment of the campaign (engage.experiments) the holdout comes first (a skip,
    reason `holdout`), then each customer's variant: its template version is the one rendered, its send
    window the one checked. The assignment is stored here, on exposure (`records_exposure`; a dry run
    previews the same variants and stores nothing), and the plan carries it to the message.
    """

    policy = policy_for(company=company)
    if not policy.is_smartengage_enabled:
        raise ValidationError({"smartengage": "SmartEngage is switched off in this company's engagement policy."})
    config = ai_config_for(company=company)

    # The latest completed bookings of the whole batch in one query: the last one picks the service,
    # all of them are the prompt's booking history.
    histories = customer_booking_histories(customer_ids=[customer.pk for customer in customers])
    templates: dict[str, tuple[PromptTemplateVersion | None, PromptTemplateVersion]] = {}
    system_texts: dict[tuple, str] = {}
    now = timezone.now()
    exposures = experiment_exposures(
        campaign_id=campaign_id, unit_ids=[customer.pk for customer in customers], record=records_exposure
    ) if campaign_id is not None else {}
    timed = [customer.contact for customer in customers
             if (exposure := exposures.get(customer.pk)) is not None and exposure.variant_kind == "send_time"]
    # The send-time arm sends in each customer's best hour inside the window (a run at another hour skips
    # them as outside the window; the next run tries again).
    hours = best_hours(company=company, contacts=timed, window=send_window or (0, 24)) if timed else {}
    plans = []
    for customer in customers:
        plan = Plan(customer=customer, correlation_id=uuid.uuid4(), channel=channel)
        plan.cycle_started_at = customer.last_booking_at
        exposure = exposures.get(customer.pk)
        if exposure is not None and exposure.is_holdout:
            plan.reason = Reason.HOLDOUT
        if not plan.reason and not is_segmented:
            # A campaign's segment already selected consented customers under their caps; the
            # atomic reservation at send time decides in every case.
            plan.reason = consent_and_caps_reason(
                customer=customer, channel=channel, bypass_frequency_caps=bypass_frequency_caps
            )
        window = send_window
        if exposure is not None and exposure.variant_kind == "send_setting" and send_window is not None:
            window = (
                exposure.settings.get("send_window_start_hour", send_window[0]),
                exposure.settings.get("send_window_end_hour", send_window[1]),
            )
        if not plan.reason and window is not None:
            local_hour = now.astimezone(contact_zone(contact=customer.contact)).hour
            if not window[0] <= local_hour < window[1]:
                plan.reason = Reason.OUTSIDE_SEND_WINDOW
        if not plan.reason and customer.contact_id in hours:
            if now.astimezone(contact_zone(contact=customer.contact)).hour != hours[customer.contact_id]:
                plan.reason = Reason.OUTSIDE_SEND_WINDOW
        if exposure is not None:
            plan.assignment_id = exposure.assignment_id
        plans.append(plan)
        if plan.reason:
            continue
        history = histories.get(customer.pk, [])
        last = history[0] if history else None
        plan.service = service or (last.service if last else None)
        locale = customer.contact.locale or "bn"
        if locale not in templates:
            templates[locale] = smartengage_templates(company=company, locale=locale)
        system, plan.version = templates[locale]
        if exposure is not None and exposure.template_version is not None:
            plan.version = exposure.template_version
        context = reminder_prompt_context(
            company=company, customer=customer, service=plan.service, history=history, now=now,
            promo_code=promo_code, channel=channel, sms_max_segments=config.sms_max_segments,
        )
        messages = []
        system_key = (system.pk if system else None, locale)
        system_text = system_texts.get(system_key)
        if system_text is None:
            system_text = (
                template_render(body=system.body, agent_type=AGENT_TYPE, context=context)
                if system else config.system_prompt
            )
            company_only = system is None or template_variables_check(
                agent_type=AGENT_TYPE, body=system.body
            ) <= {"company_name"}
            if company_only:
                system_texts[system_key] = system_text
        if system_text:
            messages.append({"role": "system", "content": system_text})
        messages.append(
            {"role": "user", "content": template_render(body=plan.version.body, agent_type=AGENT_TYPE, context=context)}
        )
        plan.link = link_for(
            plan=plan, promo_code=promo_code, ttl_hours=ttl_hours, is_deeplink_enabled=policy.is_deeplink_enabled
        )
        plan.request = GenerationRequest(
            company=company,
            agent_type=AGENT_TYPE,
            purpose=MESSAGE_TYPE,
            messages=messages,
            message_type=MESSAGE_TYPE,
            locale=plan.version.template.locale,
            channel=channel,
            contact=customer.contact,
            correlation_id=plan.correlation_id,
            link=plan.link,
            # The claims the text may make: the service's price and the campaign's code, nothing else.
            safety_context=SafetyContext(
                prices=(plan.service.base_price,) if plan.service and plan.service.base_price else (),
                promo_codes=(promo_code,) if promo_code else (),
            ),
            fallback_context={
                "service_name_bn": (plan.service.name_bn or plan.service.name) if plan.service else "",
                "service_name": plan.service.name if plan.service else "",
                "promo_code": promo_code,
            },
        )
    return plans


def customers_for_company(*, company: Company, customer_ids: Iterable[Any]) -> list[Customer]:
    """The customers of `company` with these ids; ValidationError naming the ids that are not the company's."""
    try:
        ids = sorted({int(value) for value in customer_ids})
    except (TypeError, ValueError):
        raise ValidationError({"customer_ids": "Customer ids are integers."}) from None
    customers = list(
        Customer.objects.filter(company=company, pk__in=ids).select_related("contact", "company").order_by("pk")
    )
    missing = sorted(set(ids) - {customer.pk for customer in customers})
    if missing:
        # The same answer for another company's customer and for none at all: nothing leaks.
        raise ValidationError({"customer_ids": f"Unknown customer id(s): {', '.join(map(str, missing))}."})
    return customers
