import importlib

from django.apps import AppConfig

# Each feature's job handlers (registered with @job_handler on import) and Celery tasks.
HANDLER_MODULES = (
    "engage.messaging.handlers",
    "engage.webhooks",
    "engage.imports",
    "engage.conversations.handlers",
    "engage.campaigns.handlers",
    "engage.experiments.handlers",
)
TASK_MODULES = (
    "engage.ledger.tasks",
    "engage.conversations.tasks",
    "engage.campaigns.tasks",
    "engage.experiments.tasks",
)


class EngageConfig(AppConfig):
    name = "engage"
    verbose_name = "Engagement"

    def ready(self) -> None:
        from crm.feed.imports import import_enqueue_hook_register
        from crm.services import contact_merge_hook_register, event_recorded_hook_register
        from engage import receivers
        from engage.ai.config import ai_config_cache_connect, allowed_link_hosts
        from engage.ai.safety import safety_rows_cache_connect
        from engage.campaigns.merge import contact_merge_campaign_rows
        from engage.conversations.handoff import handoff_keywords_cache_connect
        from engage.conversations.merge import contact_merge_messages
        from engage.imports import import_job_enqueue
        from engage.messaging.services import channel_settings_cache_connect, link_hosts_provider_register
        from engage.metrics_seed import engage_counters_seed
        from engage.prompts.services import company_templates_seed_connect
        from engage.webhooks import webhook_events_enqueue

        for module in (*HANDLER_MODULES, *TASK_MODULES):
            importlib.import_module(module)
        receivers.connect()  # channels_app's report-back signals: delivery statuses and inbound messages
        channel_settings_cache_connect()  # a saved channel account or company clears the send path's cache
        link_hosts_provider_register(allowed_link_hosts)  # email links: the company's allowed link domains too
        safety_rows_cache_connect()  # a saved banned phrase, fallback text or company clears the reply path's cache
        handoff_keywords_cache_connect()  # a saved AI configuration clears the inbound path's keyword cache
        ai_config_cache_connect()  # a saved AI configuration or company clears the reply path's copy
        # crm's contact merge re-points engage's rows (messages, AI sessions, campaign recipients).
        contact_merge_hook_register(contact_merge_messages)
        contact_merge_hook_register(contact_merge_campaign_rows)
        event_recorded_hook_register(webhook_events_enqueue)  # recorded events reach the company's webhook
        company_templates_seed_connect()  # a new company starts with the default prompt templates
        import_enqueue_hook_register(import_job_enqueue)  # large console imports run on the ledger
        engage_counters_seed()  # every known series on /metrics at 0 from start-up, not "no data"
