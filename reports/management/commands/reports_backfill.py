"""manage.py reports_backfill [--company ID ...] [--since YYYY-MM-DD] [--until YYYY-MM-DD]: rebuild the rollups."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from crm.models import Company
from reports.rollups.services import rollups_backfill


class Command(BaseCommand):
    help = "Rebuild the dashboard's rollups of every (or the given) company, from its first activity or --since."

    def add_arguments(self, parser):
        parser.add_argument("--company", type=int, action="append", default=[], help="A company id (repeatable).")
        parser.add_argument("--since", type=dt.date.fromisoformat, help="First local day (default: first activity).")
        parser.add_argument("--until", type=dt.date.fromisoformat, help="Last local day (default: today).")

    def handle(self, *args, company, since, until, **options):
        companies = Company.objects.order_by("pk")
        if company:
            companies = companies.filter(pk__in=company)
            missing = set(company) - set(companies.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No company with id {sorted(missing)}.")
        if since and until and since > until:
            raise CommandError("--since is after --until.")
        for each in companies:
            started = time.monotonic()
            results = rollups_backfill(company=each, first=since, last=until)
            rows = sum(sum(result["rows"].values()) for result in results)
            self.stdout.write(f"{each.slug}: {len(results)} chunk(s), {rows} rollup rows in "
                              f"{time.monotonic() - started:.1f} s")
