from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        from crm.tenancy.api import api_key_cache_connect

        api_key_cache_connect()
