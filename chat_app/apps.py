from django.apps import AppConfig


class ChatAppConfig(AppConfig):
    name = "chat_app"
    verbose_name = "Chat"

    def ready(self) -> None:
        from chat_app.llm import llm_is_configured, model_client_prepare
        from chatapi.health import health_probe_register
        from chatapi.startup import server_start_register

        health_probe_register("ai_service", llm_is_configured, up="configured", down="unconfigured")
        server_start_register(model_client_prepare)
