"""engage listens to channels_app's report-back signals (the one boundary where signals are used).

`connect()` is called by EngageConfig.ready().
"""

from __future__ import annotations

import logging

from channels_app.signals import delivery_status_changed, inbound_message_received
from crm.models import Company
from engage.conversations.inbound import inbound_message_capture
from engage.conversations.rich_inbound import (
    ad_summary,
    contact_number_change,
    inbound_body,
    inbound_details_store,
    message_delivery_details_record,
    message_reaction_record,
)
from engage.messaging.services import message_status_update

logger = logging.getLogger(__name__)


def on_delivery_status_changed(
    sender, *, channel, provider_message_id, status, company_id=None, error="", raw=None, occurred_at=None,
    details=None, **kwargs,
) -> None:
    message_status_update(
        company_id=company_id,
        channel=channel,
        provider_message_id=provider_message_id,
        status=status,
        error=error or "",
        raw=raw,
        occurred_at=occurred_at,
    )
    message_delivery_details_record(
        company_id=company_id, channel=channel, provider_message_id=provider_message_id, status=status,
        error=error or "", details=details, occurred_at=occurred_at,
    )


def on_inbound_message_received(
    sender, *, company_id, channel, text, from_phone="", from_email="", from_name="", provider_message_id="",
    raw=None, occurred_at=None, kind="text", caption="", media=None, reply=None, context_message_id="",
    referral=None, extra=None, to_address="", attachments=None, **kwargs,
) -> None:
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is None:
        logger.warning("inbound %s message for unknown or inactive company %s dropped", channel, company_id)
        return
    extra = extra or {}
    if kind == "reaction":
        reaction = extra.get("reaction") or {}
        message_reaction_record(
            company=company, channel=channel, provider_message_id=reaction.get("message_id", ""),
            emoji=reaction.get("emoji", ""), from_phone=from_phone, occurred_at=occurred_at,
            reaction_id=provider_message_id,
        )
        return
    if kind == "system":
        system = extra.get("system") or {}
        if system.get("new_wa_id"):
            contact_number_change(
                company=company, channel=channel, from_phone=from_phone, new_phone=system["new_wa_id"],
                body=system.get("body", ""), occurred_at=occurred_at,
            )
        return
    result = inbound_message_capture(
        company=company,
        channel=channel,
        text=inbound_body(kind=kind, text=text),
        phone=from_phone or "",
        email=from_email or "",
        contact_name=from_name or "",
        # A conversation that starts from a click-to-WhatsApp ad is a lead from that ad.
        source="ad" if referral else channel,
        external_id=f"{channel}:{provider_message_id}" if provider_message_id else "",
        occurred_at=occurred_at,
        raw=raw,
        lead_details={"ad": ad_summary(referral)} if referral else None,
    )
    if not result.is_duplicate:
        inbound_details_store(
            company=company, channel=channel, message_id=result.message_id, lead_id=result.lead_id, kind=kind,
            caption=caption, media=media, reply=reply, context_message_id=context_message_id, referral=referral,
            extra=extra, occurred_at=occurred_at, channel_number=to_address or "", attachments=attachments,
        )


def connect() -> None:
    delivery_status_changed.connect(on_delivery_status_changed, dispatch_uid="engage.delivery_status_changed")
    inbound_message_received.connect(on_inbound_message_received, dispatch_uid="engage.inbound_message_received")
