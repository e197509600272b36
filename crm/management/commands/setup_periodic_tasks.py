from django.core.management.base import BaseCommand

from shokti.schedules import schedules_sync


class Command(BaseCommand):
    help = "Create the default beat schedules that are missing; existing ones stay as ops left them."

    def handle(self, *args, **options):
        report = schedules_sync()
        for name in report.created:
            self.stdout.write(f"created: {name}")
        for name in report.kept:
            self.stdout.write(f"kept as is: {name}")
        self.stdout.write(self.style.SUCCESS(f"{len(report.created)} created, {len(report.kept)} kept"))
