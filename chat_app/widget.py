"""The demo page at `/`: two lines about the service and the embedded chat widget."""

from django.views.generic import TemplateView


class WidgetDemoView(TemplateView):
    template_name = "chat_app/demo.html"
