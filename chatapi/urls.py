"""Every route: each app's own `urls.py`, named, not imported; then the schema, health and the staff console."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from chatapi.health import HealthView

api_v1 = [
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("", include("sessions_app.urls")),
    path("", include("chat_app.urls")),
    path("", include("staff_app.urls")),
    path("api/v1/", include(api_v1)),
    re_path(r"^health/?$", HealthView.as_view(), name="health"),
    path("admin/", admin.site.urls),
]

handler400 = "chatapi.exceptions.json_bad_request"
handler403 = "chatapi.exceptions.json_permission_denied"
handler404 = "chatapi.exceptions.json_not_found"
handler500 = "chatapi.exceptions.json_server_error"
