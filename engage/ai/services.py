"""The safety filter as a service: judge any text exactly as a send would (`POST /api/safety/check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from crm.models import Company, Contact, Service
from engage.ai.client import ai_text_judge
from engage.ai.links import host_is_allowed, settings_host
from engage.ai.safety import SafetyVerdict, safety_check, safety_policy_for
from engage.ai.safety_context import SafetyContext

CHECK_CHANNELS = ("sms", "email", "whatsapp_cloud", "whatsapp_web")
CHECK_MESSAGE_TYPES = ("reminder", "reply", "followup", "sequence_step", "coaching")


@dataclass(frozen=True)
class TextCheck:
    verdict: SafetyVerdict
    records: dict[str, Any] = field(default_factory=dict)


def safety_text_check(
    *,
    company: Company,
    text: str,
    channel: str,
    locale: str = "bn",
    message_type: str = "reply",
    contact_id: int | None = None,
    link: str = "",
    promo_code: str = "",
    service_id: int | None = None,
) -> TextCheck:
    """Judge `text` for `company` as a send would: the offline filter on the text, then (with a key) the
    moderation endpoint and the tone judge. `contact_id` and `service_id` must be the company's
    (ValidationError otherwise, the same for another company's row and for none); `link` must be on one
    of the company's link hosts and is then the message's own link, required in the text."""
    contact = service = None
    if contact_id is not None:
        contact = Contact.objects.filter(company=company, pk=contact_id).only("name", "phone", "email").first()
        if contact is None:
            raise ValidationError({"contact_id": "Unknown contact."})
    if service_id is not None:
        service = Service.objects.filter(company=company, pk=service_id).only("base_price").first()
        if service is None:
            raise ValidationError({"service_id": "Unknown service."})
    policy = safety_policy_for(company=company)
    if link and not host_is_allowed(settings_host(link), policy.allowed_link_hosts or ()):
        raise ValidationError({"link": "Not on one of the company's link hosts (AI configuration > allowed link domains)."})
    context = SafetyContext(
        recipient_name=contact.name if contact else "",
        recipient_phone=contact.phone if contact else "",
        recipient_email=contact.email if contact else "",
        message_type=message_type,
        prices=(service.base_price,) if service is not None and service.base_price else (),
        promo_codes=(promo_code,) if promo_code else (),
        brand=company.name,
    )
    verdict = safety_check(text=text, policy=policy, channel=channel, locale=locale, link=link or None,
                           context=context)

    extra, records = ai_text_judge(company=company, text=text.replace(link, " ") if link else text,
                                   message_type=message_type)
    if extra:
        verdict = SafetyVerdict.of([*verdict.reasons, *extra], verdict.details)
    return TextCheck(verdict=verdict, records=records)
