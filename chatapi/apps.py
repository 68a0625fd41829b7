from django.apps import AppConfig


class ChatapiConfig(AppConfig):
    name = "chatapi"
    verbose_name = "Chat API"

    def ready(self) -> None:
        from chatapi import checks, schema  # noqa: F401 - registers system checks and schema extensions
