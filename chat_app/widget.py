"""The demo page at `/`: two lines about the service and the embedded chat widget."""

from django.views.generic import TemplateView

from chat_app.llm import llm_is_configured


class WidgetDemoView(TemplateView):
    template_name = "chat_app/demo.html"

    def get_context_data(self, **kwargs):
        # The operator's first visit on a fresh clone: say how to plug in a model, while none is.
        return {**super().get_context_data(**kwargs), "model_configured": llm_is_configured()}
