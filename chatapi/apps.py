from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ChatapiConfig(AppConfig):
    name = "chatapi"
    verbose_name = "Chat API"

    def ready(self) -> None:
        from chatapi import checks  # noqa: F401 - registers the system checks


class ChatAdminConfig(admin_apps.AdminConfig):
    """Django's admin, on our site: its log-in is rate limited (chatapi.adminsite)."""

    default = False  # ChatapiConfig stays the config of the `chatapi` entry
    default_site = "chatapi.adminsite.ChatAdminSite"
