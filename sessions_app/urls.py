"""The visitor's own session: `/api/v1/auth/...`."""

from django.urls import include, path

from chatapi.routers import ApiRouter
from sessions_app.api import VisitorSessionViewSet

router = ApiRouter()
router.register("auth", VisitorSessionViewSet, basename="auth")

urlpatterns = [path("api/v1/", include(router.urls))]
