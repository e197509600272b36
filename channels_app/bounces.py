"""Bounces and spam complaints of our email, read from the bounce mailbox (VERP).

With EMAIL_BOUNCE_ADDRESS = bounces@mail.example.com, every email leaves with the return path
bounces+<token>@mail.example.com, the token naming its `EmailDelivery`. Receiving servers send
delivery status notifications (RFC 3464, multipart/report; report-type=delivery-status) there,
and feedback loops send complaints (RFC 5965 ARF, report-type=feedback-report). This module reads
that mailbox (EMAIL_BOUNCE_MAILBOX_URL: maildir:///path, mbox:///path or imaps://user:pass@host/INBOX),
matches each report to its email by the VERP token (or the original Message-ID), and records it:

- a hard bounce (Action: failed, Status 5.x.x): the email is marked bounced, the message failed
  with the reason (delivery_status_changed "failed"), and the contact's email consent revoked, so
  no further mail goes to a dead address;
- a soft bounce (4.x.x, delayed): noted on the delivery, nothing else (the next email may arrive);
- a complaint: the contact's email consent revoked and the message shows it ("complained").

Run by the beat task `channels_app.email_bounces_poll` (every 5 minutes) or
`manage.py email_bounces_poll`. Each report is processed once (maildir: moved to cur/ and
flagged seen; mbox: removed; IMAP: flagged \\Seen), and recording is idempotent anyway.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import imaplib
import logging
import mailbox
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app import signals
from channels_app.models import EmailDelivery, ProviderCallback
from crm.models import Channel

logger = logging.getLogger(__name__)

TOKEN = re.compile(r"\+([0-9a-f]{24})@", re.IGNORECASE)
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class BounceReport:
    kind: str  # hard, soft, complaint
    token: str = ""
    message_id: str = ""  # the original email's Message-ID, without <>
    status: str = ""  # the enhanced status code, e.g. 5.1.1
    diagnostic: str = ""
    recipient: str = ""
    company_id: int | None = None  # a provider's webhook names its account: only that company's emails match


def _headers_text(message: Message, names: tuple[str, ...]) -> str:
    return " ".join(str(value) for name in names for value in message.get_all(name, []))


def _original(report: Message) -> Message | None:
    """The returned message (or its headers) inside a report."""
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            return payload[0] if isinstance(payload, list) and payload else None
        if content_type in ("text/rfc822-headers", "text/rfc822-header"):
            return email.message_from_string(part.get_payload(decode=True).decode("utf-8", "replace"),
                                             policy=email.policy.default)
    return None


def _status_fields(report: Message, content_type: str) -> list[Message]:
    for part in report.walk():
        if part.get_content_type() == content_type:
            payload = part.get_payload()
            if isinstance(payload, list):
                return payload
            text = part.get_payload(decode=True) or b""
            return [email.message_from_bytes(block.strip() + b"\n") for block in re.split(rb"\r?\n\r?\n", text) if block.strip()]
    return []


def bounce_parse(message: Message) -> BounceReport | None:
    """The bounce or complaint a received report describes, or None if it is neither (an autoreply, spam)."""
    report_type = (message.get_param("report-type") or "").lower() if message.get_content_type() == "multipart/report" else ""
    original = _original(message)
    token_match = TOKEN.search(_headers_text(message, ("To", "Delivered-To", "X-Original-To", "Envelope-To")))
    if token_match is None and original is not None:
        token_match = TOKEN.search(_headers_text(original, ("Return-Path", "Sender")))
    token = token_match.group(1).lower() if token_match else ""
    message_id = str(original.get("Message-ID", "")).strip().strip("<>") if original is not None else ""
    if report_type == "feedback-report":
        fields = _status_fields(message, "message/feedback-report")
        feedback_type = str(fields[0].get("Feedback-Type", "abuse")).lower() if fields else "abuse"
        recipient = str(fields[0].get("Original-Rcpt-To", "")) if fields else ""
        return BounceReport(kind="complaint", token=token, message_id=message_id, diagnostic=feedback_type,
                            recipient=recipient)
    if report_type != "delivery-status":
        return None
    for fields in _status_fields(message, "message/delivery-status"):
        action = str(fields.get("Action", "")).strip().lower()
        status_match = STATUS.search(str(fields.get("Status", "")))
        if not action and not status_match:
            continue  # the per-message block
        status = ".".join(status_match.groups()) if status_match else ""
        diagnostic = " ".join(str(fields.get("Diagnostic-Code", "")).split())[:450]
        recipient = str(fields.get("Final-Recipient", "")).rpartition(";")[2].strip()
        if action == "failed" and status.startswith("5"):
            kind = "hard"
        elif action in ("failed", "delayed") or status.startswith("4"):
            kind = "soft"
        else:
            continue  # delivered, relayed, expanded: not a problem
        return BounceReport(kind=kind, token=token, message_id=message_id, status=status, diagnostic=diagnostic,
                            recipient=recipient)
    return None


def _delivery_for(report: BounceReport) -> EmailDelivery | None:
    deliveries = EmailDelivery.objects.select_related("company", "account")
    if report.company_id is not None:
        deliveries = deliveries.filter(company_id=report.company_id)
    if report.token:
        return deliveries.filter(token=report.token).first()
    if report.message_id:
        return deliveries.filter(provider_message_id=report.message_id).first()
    return None


def bounce_record(*, report: BounceReport) -> str:
    """Record one report on its email: "hard", "soft", "complaint", "duplicate" or "unmatched"."""
    from channels_app.services import _emit, email_unsubscribe

    delivery = _delivery_for(report)
    if delivery is None:
        logger.info("bounce report (%s) matches none of our emails", report.kind)
        return "unmatched"
    now = timezone.now()
    with transaction.atomic():
        if report.kind == "complaint":
            changed = EmailDelivery.objects.filter(pk=delivery.pk, complained_at__isnull=True).update(complained_at=now)
            status, error = "complained", f"reported as spam ({report.diagnostic or 'abuse'})"
            details = {"complaint": {"feedback_type": report.diagnostic or "abuse"}}
        else:
            detail = f"{report.status} {report.diagnostic}".strip()[:500]
            first = EmailDelivery.objects.filter(pk=delivery.pk, bounced_at__isnull=True)
            if report.kind == "soft":
                first.update(bounced_at=now, bounce_type=EmailDelivery.BounceType.SOFT, bounce_detail=detail)
                return "soft"
            # A hard bounce replaces an earlier soft one.
            changed = EmailDelivery.objects.filter(pk=delivery.pk).exclude(bounce_type=EmailDelivery.BounceType.HARD).update(
                bounced_at=now, bounce_type=EmailDelivery.BounceType.HARD, bounce_detail=detail
            )
            status, error = "failed", f"bounced: {detail}"
            details = {"bounce": {"type": "hard", "status": report.status, "diagnostic": report.diagnostic,
                                  "is_permanent": True}}
        if not changed:
            return "duplicate"
        email_unsubscribe(
            company_id=delivery.company_id, contact_id=delivery.contact_id, email=delivery.to_email,
            reason="complaint" if report.kind == "complaint" else "hard_bounce",
        )
        if delivery.provider_message_id:
            callback, created = ProviderCallback.objects.get_or_create(
                company_id=delivery.company_id, channel=Channel.EMAIL, provider_message_id=delivery.provider_message_id,
                status=status, defaults={"account": delivery.account, "error": error[:500], "raw": report.__dict__},
            )
            if created:
                _emit(
                    callback, signals.delivery_status_changed, company_id=delivery.company_id, channel=Channel.EMAIL,
                    provider_message_id=delivery.provider_message_id, status=status, error=error, raw=report.__dict__,
                    occurred_at=now, details=details,
                )
    return report.kind


# --- the provider's event webhook ----------------------------------------------------------------

# How old a signed event may be: Mailgun retries for 8 hours, its signature carries its own time.
EVENT_MAX_AGE_SECONDS = 24 * 3600


def mailgun_signature_valid(*, signing_key: str, signature: dict, now: float) -> bool:
    """Mailgun's webhook signature: HMAC-SHA256(signing key, timestamp + token), hex; fresh enough."""
    if not signing_key or not isinstance(signature, dict):
        return False
    timestamp, token, given = (str(signature.get(key) or "") for key in ("timestamp", "token", "signature"))
    if not (timestamp.isdigit() and token and given) or abs(now - int(timestamp)) > EVENT_MAX_AGE_SECONDS:
        return False
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode())


def mailgun_event_report(event: dict, *, company_id: int) -> BounceReport | None:
    """A Mailgun `event-data` as a bounce report: `failed` (permanent: hard, temporary: soft) or
    `complained`; None for every other event (delivered, opened ... are ours to track, not Mailgun's)."""
    kind = {"complained": "complaint"}.get(str(event.get("event") or ""))
    if event.get("event") == "failed":
        kind = "hard" if event.get("severity") == "permanent" else "soft"
    if kind is None:
        return None
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    code = str(status.get("enhanced-code") or "")
    if not STATUS.fullmatch(code):
        smtp = str(status.get("code") or "")
        code = f"{smtp[0]}.0.0" if smtp[:1] in ("4", "5") else ("5.0.0" if kind == "hard" else "")
    diagnostic = " ".join(str(status.get(key) or "") for key in ("message", "description")).strip()
    return BounceReport(
        kind=kind, message_id=str(headers.get("message-id") or "").strip("<> "), status=code,
        diagnostic=(diagnostic or str(event.get("reason") or ""))[:400], recipient=str(event.get("recipient") or ""),
        company_id=company_id,
    )


# --- the mailbox ----------------------------------------------------------------------------


@contextmanager
def _maildir(path: str) -> Iterator[Iterator[tuple[Message, Callable[[], None]]]]:
    box = mailbox.Maildir(path, factory=None, create=False)

    def messages():
        for key in list(box.iterkeys()):
            stored = box.get_message(key)
            if stored.get_subdir() == "cur" and "S" in stored.get_flags():
                continue

            def done(key=key, stored=stored):
                stored.set_subdir("cur")
                stored.add_flag("S")
                box[key] = stored

            yield email.message_from_bytes(box.get_bytes(key), policy=email.policy.default), done

    yield messages()


@contextmanager
def _mbox(path: str) -> Iterator[Iterator[tuple[Message, Callable[[], None]]]]:
    box = mailbox.mbox(path, create=False)
    box.lock()
    processed: list[str] = []
    try:
        def messages():
            for key in list(box.iterkeys()):
                yield email.message_from_bytes(box.get_bytes(key), policy=email.policy.default), (
                    lambda key=key: processed.append(key)
                )

        yield messages()
        for key in processed:
            box.remove(key)
        box.flush()
    finally:
        box.unlock()
        box.close()


@contextmanager
def _imap(url: str) -> Iterator[Iterator[tuple[Message, Callable[[], None]]]]:
    parts = urlsplit(url)
    client_class = imaplib.IMAP4_SSL if parts.scheme == "imaps" else imaplib.IMAP4
    client = client_class(parts.hostname, parts.port or (993 if parts.scheme == "imaps" else 143),
                          timeout=float(getattr(settings, "EMAIL_TIMEOUT", 20)))
    try:
        client.login(unquote(parts.username or ""), unquote(parts.password or ""))
        client.select(unquote(parts.path.lstrip("/")) or "INBOX")

        def messages():
            _, found = client.search(None, "UNSEEN")
            for number in (found[0] or b"").split():
                _, data = client.fetch(number, "(BODY.PEEK[])")
                raw = next((item[1] for item in data if isinstance(item, tuple)), b"")
                yield email.message_from_bytes(raw, policy=email.policy.default), (
                    lambda number=number: client.store(number, "+FLAGS", "\\Seen")
                )

        yield messages()
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def mailbox_open(url: str):
    """The reports of a bounce mailbox URL: maildir:///path, mbox:///path, imap(s)://user:pass@host[:port]/FOLDER."""
    scheme = urlsplit(url).scheme
    if scheme in ("maildir", "mbox"):
        path = unquote(urlsplit(url).path)
        if not Path(path).exists():
            raise FileNotFoundError(f"No {scheme} at {path}.")
        return _maildir(path) if scheme == "maildir" else _mbox(path)
    if scheme in ("imap", "imaps"):
        return _imap(url)
    raise ValueError(f"Unknown bounce mailbox URL scheme {scheme!r} (maildir, mbox, imap, imaps).")


def email_bounces_poll(*, url: str | None = None, limit: int = 1000) -> dict[str, int]:
    """Read the bounce mailbox once and record what it holds; counts per outcome (nothing when unset)."""
    url = url if url is not None else getattr(settings, "EMAIL_BOUNCE_MAILBOX_URL", "")
    counts: dict[str, int] = {}
    if not url:
        return counts
    with mailbox_open(url) as messages:
        for index, (message, done) in enumerate(messages):
            if index >= limit:
                break
            report = bounce_parse(message)
            outcome = bounce_record(report=report) if report is not None else "not_a_report"
            counts[outcome] = counts.get(outcome, 0) + 1
            done()
    if counts:
        logger.info("email bounces: %s", counts)
    return counts
