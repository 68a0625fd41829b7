"""The visitor's conversation, `/api/v1/chat/...`, and the demo page with the widget at `/`."""

from django.urls import include, path

from chat_app.api import ChatViewSet
from chat_app.widget import WidgetDemoView
from chatapi.routers import ApiRouter

router = ApiRouter()
router.register("chat", ChatViewSet, basename="chat")

urlpatterns = [
    path("api/v1/", include(router.urls)),
    path("", WidgetDemoView.as_view(), name="widget-demo"),
]
