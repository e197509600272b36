from django.apps import AppConfig


class CoachingConfig(AppConfig):
    name = "coaching"
    verbose_name = "CoachNova coaching"

    def ready(self) -> None:
        from coaching import handlers  # noqa: F401  (registers the ledger handlers in every process)
        from coaching.receivers import coaching_hooks_connect

        coaching_hooks_connect()
