from django.apps import AppConfig


class EngageConfig(AppConfig):
    name = "engage"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from engage import receivers  # noqa: F401  (connects channels_app's report-back signals)
        from engage.handlers import load_handlers

        load_handlers()

        from engage.services import merge

        merge.register()  # crm's contact merge re-points engage's rows (messages, AI sessions, campaign recipients)

        from crm.services import event_recorded_hook_register
        from engage.handlers.webhook_reminder import webhook_events_enqueue

        event_recorded_hook_register(webhook_events_enqueue)  # recorded events reach the company's webhook

        from crm.feed.imports import import_enqueue_hook_register
        from engage.handlers.imports import import_job_enqueue

        import_enqueue_hook_register(import_job_enqueue)  # large console imports run on the ledger
