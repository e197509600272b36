"""SpamAssassin's score of every kind of email we send, as mailbox providers would first judge it.

    .venv/bin/python bench/run_all.py email_spam      # or `make bench` (installs Debian's spamassassin)

Each email is rendered by the real email adapter (channels_app.adapters.email: layout, headers,
tracking links, List-Unsubscribe, Feedback-ID) into Django's in-memory outbox, then scored by
`spamassassin -L -t` (local tests only: no DNS blocklists, no Razor/Pyzor, nothing leaves the
machine). The texts are the approved offline fallbacks the product sends without a model, and
model-written reminders of the kind the studio produces (no model is called here). Every type is
scored with the company's open pixel off (the default) and on. The aim (issue 17): at most 1.0.

A 2026 reminder's signed booking link, a short link, a promo link, no link at all, a sales
follow-up and a sequence step cover what goes out today.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")

CEILING = 1.0
SCORE = re.compile(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", re.MULTILINE)
TESTS = re.compile(r"tests=(.*?)\s+autolearn", re.DOTALL)

MODEL_REMINDER = (
    "প্রিয় {name}, আপনার শেষ এসি সার্ভিসের তিন সপ্তাহ হয়ে গেছে। গরমের আগে একবার চেক করিয়ে নিলে বিদ্যুৎ বিলও কম আসবে। "
    "সুবিধামতো সময়ে বুক করুন: {link}"
)
MODEL_PROMO = (
    "{name}, এই সপ্তাহে আপনার জন্য বিশেষ ছাড়: কোড WEEKEND50 ব্যবহার করে পরের সার্ভিসে ৫০ টাকা কম দিন। "
    "বুক করতে: {link}"
)
FOLLOWUP = "আপনার প্রশ্নের উত্তর দিয়েছিলাম, আর কিছু জানতে চাইলে এই ইমেইলের উত্তরে লিখুন। আমরা সাহায্য করতে পেরে খুশি হব।"
SEQUENCE_STEP = (
    "আমাদের টেকনিশিয়ানরা ঢাকার সব এলাকায় সকাল ৯টা থেকে রাত ৯টা পর্যন্ত কাজ করেন। "
    "আপনার বাসার জন্য সময় ঠিক করতে চাইলে জানাবেন: {link}"
)


def spamassassin_path() -> str:
    path = shutil.which("spamassassin")
    if not path:
        raise RuntimeError("spamassassin is not installed (make bench installs Debian's package).")
    return path


def score(raw: bytes) -> tuple[float, str]:
    """SpamAssassin's score and the rules that hit, local tests only."""
    out = subprocess.run([spamassassin_path(), "-L", "-t"], input=raw, capture_output=True, timeout=300, check=True).stdout
    text = out.decode("utf-8", "replace")
    match = SCORE.search(text)
    if match is None:
        raise RuntimeError("SpamAssassin gave no X-Spam-Status header.")
    rules = TESTS.search(text[match.start():])
    return float(match.group(1)), " ".join((rules.group(1) if rules else "").split())


def emails() -> list[tuple[str, bytes]]:
    """(type, raw email) for every type, pixel off and on."""
    import django

    django.setup()
    from django.conf import settings
    from django.core import mail
    from django.db import transaction

    from channels_app import registry
    from channels_app.base import OutboundMessage
    from crm.models import Company, Contact
    from engage.ai.safety import fallback_text_for

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://crm.sheba-services.com.bd"
    settings.DEFAULT_FROM_EMAIL = "Sheba Home Services <reminders@sheba-services.com.bd>"
    settings.DEEP_LINK_BASE_URL = "https://app.sheba.xyz/book"
    settings.SHORT_LINK_BASE_URL = "https://app.sheba.xyz/l/"
    mail.outbox = []
    signed_link = (
        "https://app.sheba.xyz/book?c=8c0d6b4e-2f1a-4f7e-9a35-1f0d2c3b4a59&s=ac-servicing&p=&e=1795699200"
        "&sig=Yk3pQ9vT2mXw7LrH4nB8cZ1sD6fG0jK5aE3uI9oP2qW4eR7tY1uI8oP3aS5dF7gH9jK1lZ3xC5vB7nM9qW2eR4tY6"
    )
    short_link = "https://app.sheba.xyz/l/Xk29fQa"
    promo_link = "https://app.sheba.xyz/book?promo=WEEKEND50&c=8c0d6b4e-2f1a-4f7e-9a35-1f0d2c3b4a59&sig=Qm4tY8pL2wE6rT0u"
    reminder_fallback = fallback_text_for(company=None, message_type="reminder", locale="bn")
    kinds = [
        ("reminder, offline fallback, signed link", "smartengage", "reminder", f"{reminder_fallback}\n\n{signed_link}"),
        ("reminder, offline fallback, short link", "smartengage", "reminder", f"{reminder_fallback}\n\n{short_link}"),
        ("reminder, model text, signed link", "smartengage", "reminder", MODEL_REMINDER.format(name="রহিম", link=signed_link)),
        ("reminder, model text, promo link", "smartengage", "reminder", MODEL_PROMO.format(name="রহিম", link=promo_link)),
        ("reminder, no link (deep links off)", "smartengage", "reminder", reminder_fallback),
        ("sales follow-up", "sales", "followup", FOLLOWUP),
        ("sequence step", "sales", "sequence_step", SEQUENCE_STEP.format(link=short_link)),
    ]
    raws = []
    with transaction.atomic():
        company, _ = Company.objects.update_or_create(
            slug="bench-email-spam",
            defaults={"name": "Sheba Home Services", "postal_address": "House 12, Road 5, Dhanmondi, Dhaka 1205, Bangladesh"},
        )
        contact = Contact.objects.create(company=company, name="রহিম উদ্দিন", email="rahim.uddin@gmail.com")
        for pixel in (False, True):
            Company.objects.filter(pk=company.pk).update(is_email_open_tracking_enabled=pixel)
            for index, (name, agent_type, message_type, body) in enumerate(kinds):
                registry.send(OutboundMessage(
                    company_id=company.pk, channel="email", body=body, subject="আপনার সার্ভিসের সময় হয়েছে",
                    message_id=1_000_000 + index + (100 if pixel else 0), contact_id=contact.pk,
                    to_email=contact.email, to_name=contact.name,
                    options={"agent_type": agent_type, "message_type": message_type},
                ), settings={})
                raws.append((f"{name}{', open pixel on' if pixel else ''}", mail.outbox[-1].message().as_bytes()))
        transaction.set_rollback(True)  # the bench leaves nothing behind
    return raws


def main() -> list[dict]:
    figures = []
    for name, raw in emails():
        value, rules = score(raw)
        figures.append({
            "figure": f"SpamAssassin score: {name}", "value": value, "unit": "points", "ceiling": CEILING,
            "note": f"rules: {rules}" if rules else "no rule hit",
        })
        print(f"  {value:5.1f}  {name}  [{rules}]", flush=True)
    return figures


if __name__ == "__main__":
    for figure in main():
        print(figure)
