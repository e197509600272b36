"""manage.py coaching_backfill [--company SLUG]: classify every booking and compute every worker's punctuality."""

from django.core.management.base import BaseCommand, CommandError

from coaching.punctuality import punctuality_backfill
from crm.models import Company


class Command(BaseCommand):
    help = "Punctuality for the whole booking history of one company (or all): once, then the daily beat keeps it."

    def add_arguments(self, parser):
        parser.add_argument("--company", help="The company's slug (default: every active company).")

    def handle(self, *args, company=None, **options):
        companies = Company.objects.filter(is_active=True)
        if company:
            companies = companies.filter(slug=company)
            if not companies.exists():
                raise CommandError(f"No active company {company!r}.")
        for row in companies.order_by("pk"):
            result = punctuality_backfill(company=row)
            self.stdout.write(f"{row.slug}: {result['classified']} bookings, {result['workers']} workers")
