"""Celery tasks of channels_app: thin wrappers. `whatsapp_web_*` is routed to the `whatsapp_web` queue.

`channels_app.whatsapp_web_relay` (beat) runs on the default queue: its name does not match that route.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from channels_app import bounces
from channels_app.adapters import whatsapp_web
from channels_app.base import ChannelError
from channels_app.models import ChannelAccount, ProviderCallback

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="channels_app.tasks.whatsapp_web_send", acks_late=True, max_retries=None)
def whatsapp_web_send(self, *, account_id: int, provider_message_id: str, to_phone: str, body: str) -> str:
    """Type one message in WhatsApp Web; report "sent" or, when it cannot be, "failed"."""

    account = ChannelAccount.objects.filter(pk=account_id).first()
    if account is None:
        logger.warning("whatsapp web message %s: account %s is gone", provider_message_id, account_id)
        return "no-account"
    # A redelivered task after a successful send must not type the message again.
    if ProviderCallback.objects.filter(
        company_id=account.company_id,
        channel=account.channel,
        provider_message_id=provider_message_id,
        status__in=["sent", "failed"],
    ).exists():
        return "done-before"
    # The outbox row: done, or being typed by another run (a relayed duplicate), means nothing to do.
    delivery = whatsapp_web.whatsapp_web_delivery_claim(
        account_id=account_id,
        company_id=account.company_id,
        provider_message_id=provider_message_id,
        to_phone=to_phone,
        body=body,
    )
    if delivery is None:
        return "done-before"
    try:
        whatsapp_web.deliver(account_id=account_id, to_phone=delivery.to_phone, body=delivery.body)
    except ChannelError as error:
        # Attempts are counted on the row, so runs the relay published count too.
        if not error.permanent and delivery.attempts <= settings.WHATSAPP_WEB_MAX_RETRIES:
            whatsapp_web.whatsapp_web_delivery_retry_later(
                delivery=delivery, error=str(error), countdown=settings.WHATSAPP_WEB_RETRY_SECONDS
            )
            raise self.retry(countdown=settings.WHATSAPP_WEB_RETRY_SECONDS, exc=error) from None
        whatsapp_web.whatsapp_web_delivery_finish(delivery=delivery, account=account, status="failed", error=str(error))
        return "failed"
    whatsapp_web.whatsapp_web_delivery_finish(delivery=delivery, account=account, status="sent")
    return "sent"


@shared_task(name="channels_app.whatsapp_web_relay", ignore_result=True)
def whatsapp_web_relay() -> dict:
    """Beat: publish again WhatsApp Web deliveries whose task was lost; give up on very old ones."""
    return whatsapp_web.whatsapp_web_deliveries_relay()


@shared_task(name="channels_app.email_bounces_poll", ignore_result=True)
def email_bounces_poll() -> dict:
    """Beat: read the bounce mailbox (EMAIL_BOUNCE_MAILBOX_URL) and record bounces and complaints."""
    return bounces.email_bounces_poll()
