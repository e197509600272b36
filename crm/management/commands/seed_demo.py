"""manage.py seed_demo: the demo companies, logins and (optionally large) customer volume."""

import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from crm import demo


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise CommandError(f"--now wants a date like 2026-11-21, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Create the demo data (idempotent, deterministic): a home-services company, a course company, "
        "an admin, an Operations and a Marketing login, and an API key per company."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", type=_day, default=None, help="The day the data is relative to (default: today, UTC)."
        )
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED)
        parser.add_argument("--customers", type=int, default=demo.DEFAULT_CUSTOMERS)
        parser.add_argument("--bookings-per-customer", type=int, default=demo.DEFAULT_BOOKINGS_PER_CUSTOMER)

    def handle(self, *args, **options):
        if options["customers"] < 0 or options["bookings_per_customer"] < 1:
            raise CommandError("--customers must be >= 0 and --bookings-per-customer >= 1")
        started = time.perf_counter()
        result = demo.demo_seed(
            now=options["now"],
            seed=options["seed"],
            customers=options["customers"],
            bookings_per_customer=options["bookings_per_customer"],
        )
        elapsed = time.perf_counter() - started
        write = self.stdout.write
        if result.created:
            made = ", ".join(f"{number} {name}" for name, number in sorted(result.created.items()))
            write(self.style.SUCCESS(f"Demo data created in {elapsed:.1f} s: {made}."))
        else:
            write(f"Demo data already in place (checked in {elapsed:.1f} s); nothing created.")
        write(f"Base time: {result.base_time.isoformat()}")
        for slug, raw_key in sorted(result.api_keys.items()):
            write(f"API key of {slug} (shown once, store it now): {raw_key}")
        write(f"Admin: {settings.SITE_URL.rstrip('/')}/admin/")
        for role, email, password in result.logins:
            write(f"  {role:<11} {email:<24} {password}")
