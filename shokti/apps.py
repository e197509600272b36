from django.apps import AppConfig


class ShoktiConfig(AppConfig):
    """The project package as an app: project-wide wiring that needs the app registry."""

    name = "shokti"
    verbose_name = "Shokti"

    def ready(self) -> None:
        from shokti.api import schema  # noqa: F401  (registers the OpenAPI security scheme)
