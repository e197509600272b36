"""Deploy checks (`manage.py check --deploy`): what mailbox providers refuse outright.

- SITE_URL must be https: the RFC 8058 one-click unsubscribe URL must be https, and tracking
  links on plain http are a phishing signal.
- DEFAULT_FROM_EMAIL must not be a localhost or
  unqualified domain: it cannot pass SPF, DKIM or DMARC, and Gmail and Yahoo reject it.
"""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

LOCAL_DOMAINS = ("localhost", "localdomain", "local", "internal", "invalid", "test", "example")


def is_local_domain(domain: str) -> bool:
    domain = domain.strip().lower().rstrip(".")
    if not domain or "." not in domain:
        return True
    try:
        ipaddress.ip_address(domain.strip("[]"))
        return True
    except ValueError:
        pass
    return domain.rsplit(".", 1)[1] in LOCAL_DOMAINS or domain.endswith(".localhost")


@register(Tags.security, deploy=True)
def email_identity_check(app_configs=None, **kwargs):
    errors = []
    if urlsplit(settings.SITE_URL).scheme != "https":
        errors.append(Error(
            f"SITE_URL is {settings.SITE_URL!r}: it must be https in production.",
            hint="Emails' one-click unsubscribe (RFC 8058) and tracking links are built on SITE_URL.",
            id="channels.E001",
        ))
    addresses = [("DEFAULT_FROM_EMAIL", settings.DEFAULT_FROM_EMAIL)]
    for name, value in addresses:
        domain = parseaddr(value)[1].rpartition("@")[2]
        if is_local_domain(domain):
            errors.append(Error(
                f"{name} is {value!r}: its domain {domain or '(none)'!r} cannot send email that mailbox providers accept.",
                hint="Use an address on a domain you own, with SPF, DKIM and DMARC published (docs/channels.md).",
                id="channels.E002",
            ))
    return errors
