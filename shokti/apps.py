from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ShoktiConfig(AppConfig):
    """The project package as an app: project-wide wiring that needs the app registry."""

    name = "shokti"
    verbose_name = "Shokti"

    def ready(self) -> None:
        from shokti.api import schema  # noqa: F401  (registers the OpenAPI security scheme)
        from shokti.schedules import schedules_sync_after_migrate

        # Sent once per app after `migrate`; tie it to django_celery_beat so it runs once, with its tables there.
        post_migrate.connect(
            schedules_sync_after_migrate,
            sender=self.apps.get_app_config("django_celery_beat"),
            dispatch_uid="shokti.schedules_sync_after_migrate",
        )
