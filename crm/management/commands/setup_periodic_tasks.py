from django.core.management.base import BaseCommand

from shokti.schedules import DEFAULT_SCHEDULES, schedules_missing


class Command(BaseCommand):
    help = (
        "Report the default beat schedules. `migrate` creates them (a data migration, once); ops edit "
        "them in the admin. This command changes nothing."
    )

    def handle(self, *args, **options):
        missing = schedules_missing()
        for schedule in DEFAULT_SCHEDULES:
            state = "missing (deleted by hand, or run migrate)" if schedule["name"] in missing else "present"
            self.stdout.write(f"{schedule['name']}: {state}")
        self.stdout.write(f"{len(DEFAULT_SCHEDULES) - len(missing)} present, {len(missing)} missing")
