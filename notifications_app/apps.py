from django.apps import AppConfig


class NotificationsAppConfig(AppConfig):
    name = "notifications_app"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.conf import settings

        from chatapi.health import health_probe_register
        from notifications_app import receivers  # noqa: F401 - connects the signal receivers
        from notifications_app.relay import listener_recently_heard

        health_probe_register(
            "discord_gateway",
            listener_recently_heard,
            up="listening",
            down="silent",
            applies=lambda: settings.DISCORD_ENABLED,
        )
