"""Every route: the versioned API, health, schema and docs, and the staff console."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from chat_app.api import ChatViewSet
from chat_app.staff_api import StaffSessionViewSet, StaffTokenRefreshView, StaffTokenView
from chat_app.widget import WidgetDemoView
from chatapi.health import HealthView
from sessions_app.api import VisitorSessionViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # every API path works with and without the slash
router.register("auth", VisitorSessionViewSet, basename="auth")
router.register("chat", ChatViewSet, basename="chat")
router.register("staff/sessions", StaffSessionViewSet, basename="staff-session")

api_v1 = [
    re_path(r"^staff/token/?$", StaffTokenView.as_view(), name="staff-token"),
    re_path(r"^staff/token/refresh/?$", StaffTokenRefreshView.as_view(), name="staff-token-refresh"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    path("admin/", admin.site.urls),
    path("", WidgetDemoView.as_view(), name="widget-demo"),
]

handler400 = "chatapi.exceptions.json_bad_request"
handler403 = "chatapi.exceptions.json_permission_denied"
handler404 = "chatapi.exceptions.json_not_found"
handler500 = "chatapi.exceptions.json_server_error"
