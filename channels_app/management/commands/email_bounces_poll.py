"""Read the bounce mailbox once: `manage.py email_bounces_poll [--url maildir:///var/mail/bounces]`."""

from django.core.management.base import BaseCommand

from channels_app.bounces import email_bounces_poll


class Command(BaseCommand):
    help = "Record the bounces and spam complaints waiting in the bounce mailbox (EMAIL_BOUNCE_MAILBOX_URL)."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=None, help="maildir:///path, mbox:///path or imaps://user:pass@host/INBOX")

    def handle(self, *args, url=None, **options):
        counts = email_bounces_poll(url=url)
        self.stdout.write(", ".join(f"{outcome}: {count}" for outcome, count in sorted(counts.items())) or "nothing to do")
