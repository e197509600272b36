"""Email over SMTP with Django's email machinery, laid out for mailbox providers' rules.

Every email: a branded Bengali layout (lang="bn", a mobile viewport, the company's name and postal
address, a Bengali unsubscribe line), a Bengali button instead of a raw link, RFC 8058 one-click
`List-Unsubscribe`, a `Feedback-ID`, tracking links that carry opaque signed ids only, links only
to allowed hosts, an open pixel only where the company turned it on, a VERP return path when
EMAIL_BOUNCE_ADDRESS is set (bounces name the email they are about: channels_app.bounces), and a
DKIM signature when EMAIL_DKIM_* is set (channels_app.mail). Marketing email from a company
without a postal address is refused, not sent (a permanent error that says why).
"""

from __future__ import annotations

import html
import re
import smtplib
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import mark_safe

from channels_app import tracking
from channels_app.base import ChannelAdapter, ChannelError, OutboundMessage, SendResult
from channels_app.registry import register

URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
HREF = re.compile(r'href="(https?://[^"]+)"', re.IGNORECASE)
TRAILING = ".,;:!?)]।"  # punctuation after a URL in running text (Bengali dari included)
BOOKING_LABEL = "বুকিং করুন"
LINK_LABEL = "লিংকটি খুলুন"


def is_marketing(options: dict[str, Any]) -> bool:
    """Whether the email is marketing (needs the sender's postal address): by its agent type."""
    return str(options.get("agent_type") or "") in set(getattr(settings, "EMAIL_MARKETING_AGENT_TYPES", ()))


def _split_url(raw: str) -> tuple[str, str]:
    url = raw.rstrip(TRAILING)
    return url, raw[len(url):]


def _button(href: str, label: str) -> str:
    return (
        '<a class="button" href="{}" style="display:inline-block;background:#0b6e4f;color:#ffffff;'
        'text-decoration:none;font-weight:bold;padding:12px 24px;border-radius:6px;font-size:16px;'
        'line-height:1.2;">{}</a>'
    ).format(escape(href), escape(label))


class _Links:
    """The email's allowed links, in order: each becomes a tracked button; others stay plain text."""

    def __init__(self, *, hosts: frozenset[str], track: Any, label: str):
        self.hosts, self.track, self.label, self.urls = hosts, track, label, []

    def href(self, url: str) -> str | None:
        if not tracking.is_allowed_link(url, self.hosts):
            return None
        self.urls.append(url)
        return self.track(len(self.urls) - 1)

    def label_for(self, url: str) -> str:
        if self.label:
            return self.label
        deep_hosts = {tracking._host(getattr(settings, "DEEP_LINK_BASE_URL", "")),
                      tracking._host(getattr(settings, "SHORT_LINK_BASE_URL", ""))}
        return BOOKING_LABEL if tracking._host(url) in deep_hosts else LINK_LABEL


def text_to_html(body: str, links: _Links) -> str:
    """Paragraphs of escaped text; an allowed URL becomes a Bengali button (on its own line), any other
    URL stays visible text, never a link."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", body.strip()):
        parts, buttons, position = [], [], 0
        for match in URL.finditer(block):
            url, trailing = _split_url(match.group(0))
            parts.append(escape(block[position:match.start()]))
            href = links.href(url)
            if href is None:
                parts.append(escape(url))
            else:
                buttons.append(_button(href, links.label_for(url)))
            parts.append(escape(trailing))
            position = match.end()
        parts.append(escape(block[position:]))
        text = "".join(parts).strip().replace("\n", "<br>")
        if text:
            paragraphs.append(f'<p style="margin:0 0 16px 0;">{text}</p>')
        for button in buttons:
            paragraphs.append(f'<p style="margin:8px 0 24px 0;">{button}</p>')
    return "\n".join(paragraphs)


def html_links_track(body_html: str, links: _Links) -> str:
    """A caller's own HTML: allowed hrefs tracked, the others' anchors unlinked."""

    def replace(match):
        href = links.href(html.unescape(match.group(1)))
        return f'href="{escape(href)}"' if href else ""

    return HREF.sub(replace, body_html)


def _is_mostly_bengali(text: str) -> bool:
    """At least half the letters (links left out) are Bengali."""
    letters = [character for character in URL.sub(" ", text) if character.isalpha()]
    bengali = sum(1 for character in letters if "\u0980" <= character <= "\u09ff")
    return bool(letters) and bengali * 2 >= len(letters)


@register
class EmailAdapter(ChannelAdapter):
    """Settings (ChannelAccount): host, port, username, password (secret), use_tls, use_ssl,
    from_email, reply_to, unsubscribe_email. Without a host, Django's EMAIL_* settings are used.
    Options: agent_type, message_type (marketing or not, Feedback-ID), link_label, allowed_link_hosts."""

    name = "email"

    def send(self, message: OutboundMessage) -> SendResult:
        from channels_app.models import EmailDelivery
        from crm.models import Company

        if not message.to_email:
            raise ChannelError("The contact has no email address.", permanent=True)
        company = Company.objects.filter(pk=message.company_id).only(
            "id", "name", "slug", "postal_address", "is_email_open_tracking_enabled"
        ).first()
        if company is None:
            raise ChannelError("Unknown company.", permanent=True)
        options = message.options or {}
        if is_marketing(options) and not company.postal_address.strip():
            raise ChannelError(
                f"{company.name} has no postal address: marketing email must carry the sender's postal address "
                "(CAN-SPAM, and Gmail and Yahoo's rules for bulk senders). Set it on the company, then replay.",
                permanent=True,
            )
        delivery = self._delivery(EmailDelivery, message=message, company=company)
        claims = {"company_id": company.pk, "delivery_id": delivery.pk}
        from_email = self.settings.get("from_email") or settings.DEFAULT_FROM_EMAIL
        from_address = parseaddr(from_email)[1]
        unsubscribe_link = tracking.unsubscribe_url(**claims)
        unsubscribe_mailbox = self.settings.get("unsubscribe_email") or from_address
        domain = from_address.rpartition("@")[2] or None
        message_id_header = make_msgid(domain=domain)

        links = _Links(
            hosts=tracking.click_allowed_hosts(extra=options.get("allowed_link_hosts") or ()),
            track=lambda index: tracking.click_url(index=index, **claims),
            label=str(options.get("link_label") or ""),
        )
        body_html = html_links_track(message.html_body, links) if message.html_body else text_to_html(message.body, links)
        context = {
            "subject": message.subject,
            "body_text": message.body,
            "body_html": mark_safe(body_html),
            "unsubscribe_url": unsubscribe_link,
            "open_pixel_url": tracking.open_url(**claims) if company.is_email_open_tracking_enabled else "",
            "to_name": message.to_name,
            "company_name": company.name,
            "postal_address": company.postal_address.strip(),
            # Bengali mail gets a Bengali unsubscribe line.
            "is_bengali": _is_mostly_bengali(message.body),
        }
        headers = {
            "Message-ID": message_id_header,
            "List-Unsubscribe": f"<mailto:{unsubscribe_mailbox}?subject=unsubscribe>, <{unsubscribe_link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Feedback-ID": self._feedback_id(company=company, options=options),
            **({"X-Correlation-ID": str(message.correlation_id)} if message.correlation_id else {}),
        }
        envelope_from = from_email
        bounce_address = getattr(settings, "EMAIL_BOUNCE_ADDRESS", "")
        if bounce_address:
            # VERP: the return path names this email, so its bounce can be matched (channels_app.bounces).
            local, _, bounce_domain = bounce_address.partition("@")
            envelope_from = f"{local}+{delivery.token}@{bounce_domain}"
            headers["From"] = from_email
        email = EmailMultiAlternatives(
            subject=message.subject or self.settings.get("default_subject", ""),
            body=render_to_string("channels_app/email/message.txt", context),
            from_email=envelope_from,
            to=[f"{message.to_name} <{message.to_email}>" if message.to_name else message.to_email],
            reply_to=[self.settings["reply_to"]] if self.settings.get("reply_to") else None,
            headers=headers,
            connection=self._connection(),
        )
        email.attach_alternative(render_to_string("channels_app/email/message.html", context), "text/html")
        EmailDelivery.objects.filter(pk=delivery.pk).update(
            links=links.urls, link_hosts=sorted(set(options.get("allowed_link_hosts") or ())),
            provider_message_id=message_id_header.strip("<>"),
        )
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
            raw={"message_id_header": message_id_header, "email_delivery_id": delivery.pk},
        )

    def _delivery(self, model, *, message: OutboundMessage, company):
        """This email's delivery row (a retried send reuses the message's row)."""
        fields = {
            "account_id": self.settings.get("account_id"),
            "contact_id": message.contact_id,
            "to_email": message.to_email,
            "agent_type": str((message.options or {}).get("agent_type") or "")[:20],
        }
        if message.message_id is None:
            return model.objects.create(company=company, **fields)
        delivery, _ = model.objects.get_or_create(company=company, message_id=message.message_id, defaults=fields)
        return delivery

    @staticmethod
    def _feedback_id(*, company, options: dict[str, Any]) -> str:
        """Gmail's Feedback-ID: campaign:customer:type:sender, none unique per message."""
        kind = str(options.get("message_type") or "message").replace(":", "-")[:40]
        agent = str(options.get("agent_type") or "mail").replace(":", "-")[:20]
        sender = getattr(settings, "EMAIL_FEEDBACK_ID_SENDER", "shokti")
        return f"{kind}:{company.slug}:{agent}:{sender}"

    def _connection(self):
        from channels_app.mail import dkim_backend_path

        if not self.settings.get("host"):
            backend = settings.EMAIL_BACKEND
            if backend == "django.core.mail.backends.smtp.EmailBackend" and dkim_backend_path():
                backend = dkim_backend_path()
            return get_connection(backend=backend)
        return get_connection(
            backend=dkim_backend_path() or "django.core.mail.backends.smtp.EmailBackend",
            host=self.settings["host"],
            port=int(self.settings.get("port", 25)),
            username=self.settings.get("username") or None,
            password=self.settings.get("password") or None,
            use_tls=bool(self.settings.get("use_tls", False)),
            use_ssl=bool(self.settings.get("use_ssl", False)),
            timeout=float(self.settings.get("timeout", settings.EMAIL_TIMEOUT)),
            fail_silently=False,
        )
