"""manage.py seed_demo: the demo companies, logins and customer volume (crm.demo), then the story the
engagement tells on them (engage.demo): campaigns with a run and its funnel, lead conversations, a dead
job to replay, sequences in flight. The wiring layer runs both: crm may not import engage."""

import datetime as dt
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from coaching.demo import coaching_demo_seed
from crm import demo
from engage.demo import STORY_MAX_CUSTOMERS, engage_demo_seed
from reports.burnout.demo import burnout_demo_seed


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise CommandError(f"--now wants a date like 2026-11-21, not {value!r}") from None


class Command(BaseCommand):
    help = (
        "Create the demo data (idempotent, deterministic): a home-services company, a course company, "
        "an admin, an Operations and a Marketing login, an API key per company, and the engagement story "
        "(campaigns and their funnel, lead conversations, a dead job, sequences in flight)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", type=_day, default=None,
            help="The day the data is relative to (default: today, UTC). The story's runs still pick their "
            "customers by the real clock: use today for the story to match the customers' booking dates.",
        )
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED)
        parser.add_argument("--customers", type=int, default=demo.DEFAULT_CUSTOMERS)
        parser.add_argument("--bookings-per-customer", type=int, default=demo.DEFAULT_BOOKINGS_PER_CUSTOMER)
        parser.add_argument(
            "--story", action="store_true", default=None,
            help="Seed the engagement story (the default, up to "
            f"{STORY_MAX_CUSTOMERS:,} customers: the story runs a real campaign over them).",
        )
        parser.add_argument(
            "--no-story", dest="story", action="store_false",
            help="Only the CRM graph: companies, people, customers and bookings (benchmark volumes).",
        )

    def handle(self, *args, **options):
        if options["customers"] < 0 or options["bookings_per_customer"] < 1:
            raise CommandError("--customers must be >= 0 and --bookings-per-customer >= 1")
        story = options["story"]
        if story is not False and options["now"] is not None and options["now"] > dt.datetime.now(dt.UTC).date():
            raise CommandError("The story cannot happen after today: seed a later day with --no-story.")
        if story and options["customers"] > STORY_MAX_CUSTOMERS:
            raise CommandError(f"--story seeds at most {STORY_MAX_CUSTOMERS:,} customers: its campaign runs for real.")
        started = time.perf_counter()
        result = demo.demo_seed(
            now=options["now"],
            seed=options["seed"],
            customers=options["customers"],
            bookings_per_customer=options["bookings_per_customer"],
        )
        crm_seconds = time.perf_counter() - started
        story_note = ""
        if story is None:
            story = options["customers"] <= STORY_MAX_CUSTOMERS
            if not story:
                story_note = f"Story not seeded: more than {STORY_MAX_CUSTOMERS:,} customers (pass --story with fewer)."
        story_result = None
        if story:
            story_result = engage_demo_seed(seed=options["seed"], result=result)
            story_result.lines.extend(coaching_demo_seed(seed=options["seed"]))
            story_result.lines.extend(burnout_demo_seed(seed=options["seed"]))
        elapsed = time.perf_counter() - started
        write = self.stdout.write
        if result.created:
            made = ", ".join(f"{number} {name}" for name, number in sorted(result.created.items()))
            write(self.style.SUCCESS(
                f"Demo data created in {elapsed:.1f} s (CRM {crm_seconds:.1f} s, story {elapsed - crm_seconds:.1f} s):"
                f" {made}."
            ))
        else:
            write(f"Demo data already in place (checked in {elapsed:.1f} s); nothing created.")
        if story_note:
            write(story_note)
        write(f"Base time: {result.base_time.isoformat()}")
        for line in story_result.lines if story_result else []:
            write(f"  {line}")
        for slug, raw_key in sorted(result.api_keys.items()):
            write(f"API key of {slug} (shown once, store it now): {raw_key}")
        write(f"Admin: {settings.SITE_URL.rstrip('/')}/admin/")
        for role, email, password in result.logins:
            write(f"  {role:<11} {email:<24} {password}")
