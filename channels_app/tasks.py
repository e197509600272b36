"""Celery tasks of channels_app: thin wrappers. `whatsapp_web_*` is routed to the `whatsapp_web` queue."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from channels_app.base import ChannelError
from channels_app.models import ChannelAccount, ProviderCallback
from channels_app.services import delivery_status_report

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="channels_app.tasks.whatsapp_web_send", acks_late=True, max_retries=None)
def whatsapp_web_send(self, *, account_id: int, provider_message_id: str, to_phone: str, body: str) -> str:
    """Type one message in WhatsApp Web; report "sent" or, when it cannot be, "failed"."""
    from channels_app.adapters.whatsapp_web import deliver

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
    try:
        deliver(account_id=account_id, to_phone=to_phone, body=body)
    except ChannelError as error:
        if not error.permanent and self.request.retries < settings.WHATSAPP_WEB_MAX_RETRIES:
            raise self.retry(countdown=settings.WHATSAPP_WEB_RETRY_SECONDS, exc=error) from None
        delivery_status_report(
            account=account, provider_message_id=provider_message_id, status="failed", error=str(error)
        )
        return "failed"
    delivery_status_report(account=account, provider_message_id=provider_message_id, status="sent")
    return "sent"
