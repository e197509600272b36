"""Email over SMTP with Django's email machinery: HTML + text, List-Unsubscribe, open pixel, tracked links."""

from __future__ import annotations

import html
import re
import smtplib
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils.html import escape, linebreaks, urlize
from django.utils.safestring import mark_safe

from channels_app import tracking
from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult
from channels_app.registry import register

HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
URL = re.compile(r"https?://\S+")


def _is_mostly_bengali(text: str) -> bool:
    """At least half the letters (links left out) are Bengali."""
    letters = [character for character in URL.sub(" ", text) if character.isalpha()]
    bengali = sum(1 for character in letters if "\u0980" <= character <= "\u09ff")
    return bool(letters) and bengali * 2 >= len(letters)


@register
class EmailAdapter(ChannelAdapter):
    """Settings (ChannelAccount): host, port, username, password (secret), use_tls, use_ssl,
    from_email, reply_to, unsubscribe_email. Without a host, Django's EMAIL_* settings are used."""

    name = "email"

    def send(self, message: OutboundMessage) -> SendResult:
        if not message.to_email:
            raise ChannelError("The contact has no email address.", permanent=True)
        claims: dict[str, Any] = {
            "company_id": message.company_id,
            "message_id": message.message_id,
            "correlation_id": message.correlation_id,
            "contact_id": message.contact_id,
            "email": message.to_email,
            "agent_type": str(message.options.get("agent_type", "")),
        }
        from_email = self.settings.get("from_email") or settings.DEFAULT_FROM_EMAIL
        unsubscribe_link = tracking.unsubscribe_url(**claims)
        unsubscribe_mailbox = self.settings.get("unsubscribe_email") or parseaddr(from_email)[1]
        domain = parseaddr(from_email)[1].rpartition("@")[2] or None
        message_id_header = make_msgid(domain=domain)

        html_body = message.html_body or linebreaks(urlize(escape(message.body)))
        html_body = HREF.sub(
            lambda match: f'href="{escape(tracking.click_url(url=html.unescape(match.group(1)), **claims))}"',
            html_body,
        )
        context = {
            "subject": message.subject,
            "body_text": message.body,
            "body_html": mark_safe(html_body),
            "unsubscribe_url": unsubscribe_link,
            "open_pixel_url": tracking.open_url(**claims),
            "to_name": message.to_name,
            # Bengali mail gets a Bengali unsubscribe line.
            "is_bengali": _is_mostly_bengali(message.body),
        }
        email = EmailMultiAlternatives(
            subject=message.subject or self.settings.get("default_subject", ""),
            body=render_to_string("channels_app/email/message.txt", context),
            from_email=from_email,
            to=[f"{message.to_name} <{message.to_email}>" if message.to_name else message.to_email],
            reply_to=[self.settings["reply_to"]] if self.settings.get("reply_to") else None,
            headers={
                "Message-ID": message_id_header,
                "List-Unsubscribe": f"<mailto:{unsubscribe_mailbox}?subject=unsubscribe>, <{unsubscribe_link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                **({"X-Correlation-ID": str(message.correlation_id)} if message.correlation_id else {}),
            },
            connection=self._connection(),
        )
        email.attach_alternative(render_to_string("channels_app/email/message.html", context), "text/html")
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as error:
            raise ChannelError(f"Recipient refused: {error.recipients}", permanent=True) from None
        except smtplib.SMTPResponseException as error:
            # 5xx: the server will say the same next time; 4xx: try again later.
            raise ChannelError(f"SMTP {error.smtp_code}: {error.smtp_error!r}", permanent=error.smtp_code >= 500) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            raise ChannelError(f"SMTP unavailable: {error}", permanent=False) from None
        return SendResult(
            provider_message_id=message_id_header.strip("<>"),
            status="sent",
            raw={"message_id_header": message_id_header},
        )

    def _connection(self):
        if not self.settings.get("host"):
            return get_connection()
        return get_connection(
            backend="django.core.mail.backends.smtp.EmailBackend",
            host=self.settings["host"],
            port=int(self.settings.get("port", 25)),
            username=self.settings.get("username") or None,
            password=self.settings.get("password") or None,
            use_tls=bool(self.settings.get("use_tls", False)),
            use_ssl=bool(self.settings.get("use_ssl", False)),
            timeout=float(self.settings.get("timeout", settings.EMAIL_TIMEOUT)),
            fail_silently=False,
        )
