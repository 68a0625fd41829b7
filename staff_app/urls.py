"""The staff API: `/api/v1/staff/token`, its refresh, and `/api/v1/staff/sessions/...`."""

from django.urls import include, path, re_path

from chatapi.routers import ApiRouter
from staff_app.api import StaffSessionViewSet, StaffTokenRefreshView, StaffTokenView

router = ApiRouter()
router.register("staff/sessions", StaffSessionViewSet, basename="staff-session")

api_v1 = [
    re_path(r"^staff/token/?$", StaffTokenView.as_view(), name="staff-token"),
    re_path(r"^staff/token/refresh/?$", StaffTokenRefreshView.as_view(), name="staff-token-refresh"),
    *router.urls,
]

urlpatterns = [path("api/v1/", include(api_v1))]
