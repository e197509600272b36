"""engage listens to channels_app's report-back signals (the one boundary where signals are used).

`connect()` is called by EngageConfig.ready().
"""

from __future__ import annotations

import logging

from channels_app.signals import delivery_status_changed, inbound_message_received
from crm.models import Company
from engage.conversations.inbound import inbound_message_capture
from engage.messaging.services import message_status_update

logger = logging.getLogger(__name__)


def on_delivery_status_changed(
    sender, *, channel, provider_message_id, status, company_id=None, error="", raw=None, occurred_at=None, **kwargs
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


def on_inbound_message_received(
    sender, *, company_id, channel, text, from_phone="", from_email="", from_name="", provider_message_id="",
    raw=None, occurred_at=None, **kwargs,
) -> None:
    company = Company.objects.filter(pk=company_id, is_active=True).first()
    if company is None:
        logger.warning("inbound %s message for unknown or inactive company %s dropped", channel, company_id)
        return
    inbound_message_capture(
        company=company,
        channel=channel,
        text=text,
        phone=from_phone or "",
        email=from_email or "",
        contact_name=from_name or "",
        source=channel,
        external_id=f"{channel}:{provider_message_id}" if provider_message_id else "",
        occurred_at=occurred_at,
        raw=raw,
    )


def connect() -> None:
    delivery_status_changed.connect(on_delivery_status_changed, dispatch_uid="engage.delivery_status_changed")
    inbound_message_received.connect(on_inbound_message_received, dispatch_uid="engage.inbound_message_received")
