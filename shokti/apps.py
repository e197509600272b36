from django.apps import AppConfig


class ShoktiConfig(AppConfig):
    """The project package as an app: project-wide wiring that needs the app registry."""

    name = "shokti"
    verbose_name = "Shokti"

    def ready(self) -> None:
        from shokti.api import schema  # noqa: F401  (registers the OpenAPI security scheme)
        from shokti.db.lookups import lookups_register

        lookups_register()  # `__any_of` and `__not_blank` on every field (bulk readers)
        from shokti.metrics import kernel_counters_seed

        kernel_counters_seed()  # the kernel's degraded-operation counters exist at 0 from start-up
        from shokti.background_metrics import background_gauges
        from shokti.metrics import scrape_collector_register

        scrape_collector_register(background_gauges)  # workers, beat and the oldest job on /metrics
