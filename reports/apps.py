"""The manager dashboard: rollups keyed by company and local date, the console's home, burnout alerts and
`/api/reports/`. It reads engage (through `engage.api`), coaching, channels_app and crm, and nothing below
imports it."""
from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"

    def ready(self) -> None:
        from coaching.burnout import burnout_provider_register
        from reports import handlers as rollup_handlers  # noqa: F401  (the rollups' ledger job)
        from reports.burnout import admin, handlers, tasks  # noqa: F401  (the admin, ledger handlers, beat task)
        from reports.burnout.selectors import workers_under_open_alert

        # A worker under an unresolved burnout alert gets no punctuality coaching (coaching.runs), a care message.
        burnout_provider_register(workers_under_open_alert)
