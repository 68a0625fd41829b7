"""The staff API (`/api/v1/staff/token`, its refresh, `/api/v1/staff/sessions/...`, `/api/v1/staff/usage`)
and the console's usage page, `/admin/usage/` (before the admin's own URLs, which would take the path)."""

from django.contrib import admin
from django.urls import include, path, re_path

from chatapi.routers import ApiRouter
from staff_app.api import StaffSessionViewSet, StaffTokenRefreshView, StaffTokenView, StaffUsageView
from staff_app.usage_page import usage_page

router = ApiRouter()
router.register("staff/sessions", StaffSessionViewSet, basename="staff-session")

api_v1 = [
    re_path(r"^staff/token/?$", StaffTokenView.as_view(), name="staff-token"),
    re_path(r"^staff/token/refresh/?$", StaffTokenRefreshView.as_view(), name="staff-token-refresh"),
    re_path(r"^staff/usage/?$", StaffUsageView.as_view(), name="staff-usage"),
    *router.urls,
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/usage/", admin.site.admin_view(usage_page), name="staff-usage-page"),
]
