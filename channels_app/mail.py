"""DKIM signing of outgoing email with dkimpy (a maintained DKIM implementation), in Django's SMTP backend.

On when EMAIL_DKIM_DOMAIN, EMAIL_DKIM_SELECTOR and EMAIL_DKIM_PRIVATE_KEY (PEM, or
EMAIL_DKIM_PRIVATE_KEY_FILE) are set. The signing domain must be the From domain (or its parent)
for DMARC alignment; docs/channels.md says what to publish in DNS. Most relays (SES, Mailgun,
Postmark) sign for you: leave these empty there.
"""

from __future__ import annotations

import smtplib

import dkim
from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

# Headers signed (RFC 6376 5.4.1's recommendation, plus the unsubscribe pair Gmail checks).
SIGNED_HEADERS = (
    b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id",
)


def dkim_private_key() -> bytes:
    key = getattr(settings, "EMAIL_DKIM_PRIVATE_KEY", "") or ""
    return key.encode() if isinstance(key, str) else key


def dkim_backend_path() -> str:
    """The signing backend's dotted path when DKIM is configured, else ""."""
    configured = getattr(settings, "EMAIL_DKIM_DOMAIN", "") and getattr(settings, "EMAIL_DKIM_SELECTOR", "")
    return "channels_app.mail.DkimEmailBackend" if configured and dkim_private_key() else ""


def _header_names(message_bytes: bytes) -> set[bytes]:
    head = message_bytes.split(b"\r\n\r\n", 1)[0]
    return {line.split(b":", 1)[0].strip().lower() for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t", b"")}


def dkim_sign(message_bytes: bytes) -> bytes:
    """The message with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256 or ed25519)."""
    signature = dkim.sign(
        message_bytes,
        settings.EMAIL_DKIM_SELECTOR.encode(),
        settings.EMAIL_DKIM_DOMAIN.encode(),
        dkim_private_key(),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[header for header in SIGNED_HEADERS if header in _header_names(message_bytes)],
    )
    return signature + message_bytes


class DkimEmailBackend(EmailBackend):
    """Django's SMTP backend, signing each message just before it goes on the wire."""

    def _send(self, email_message):
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(address, encoding) for address in email_message.recipients()]
        message = email_message.message()
        signed = dkim_sign(message.as_bytes(linesep="\r\n"))
        try:
            self.connection.sendmail(from_email, recipients, signed)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

