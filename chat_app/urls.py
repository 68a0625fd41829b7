"""The visitor's conversation, `/api/v1/chat/...`, and the demo page with the widget at `/`."""

from django.urls import include, path, re_path

from chat_app.api import ChatEventsView, ChatHistoryView, ChatViewSet
from chat_app.widget import WidgetDemoView
from chatapi.routers import ApiRouter

router = ApiRouter()
router.register("chat", ChatViewSet, basename="chat")

urlpatterns = [
    re_path(r"^api/v1/chat/history/?$", ChatHistoryView.as_view(), name="chat-history"),
    re_path(r"^api/v1/chat/events/?$", ChatEventsView.as_view(), name="chat-events"),
    path("api/v1/", include(router.urls)),
    path("", WidgetDemoView.as_view(), name="widget-demo"),
]
