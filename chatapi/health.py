"""`/health`: is the database reachable, is the cache, is a model configured."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from chat_app.llm import llm_is_configured

logger = logging.getLogger(__name__)


def database_is_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure to reach the database means "disconnected"
        logger.warning("health: database unreachable")
        return False
    return True


def cache_is_up() -> bool:
    try:
        cache.set("health:probe", "1", timeout=5)
        return cache.get("health:probe") == "1"
    except Exception:  # noqa: BLE001 - same for the cache
        logger.warning("health: cache unreachable")
        return False


HealthOutput = inline_serializer(
    "HealthOutput",
    {
        "status": serializers.ChoiceField(["healthy", "unhealthy"]),
        "database": serializers.ChoiceField(["connected", "disconnected"]),
        "cache": serializers.ChoiceField(["connected", "disconnected"]),
        "ai_service": serializers.ChoiceField(["configured", "unconfigured"]),
        "version": serializers.CharField(),
        "timestamp": serializers.DateTimeField(),
    },
)


class HealthView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HealthOutput, 503: HealthOutput}, auth=[])
    def get(self, request):
        database = database_is_up()
        body = {
            "status": "healthy" if database else "unhealthy",
            "database": "connected" if database else "disconnected",
            "cache": "connected" if cache_is_up() else "disconnected",
            "ai_service": "configured" if llm_is_configured() else "unconfigured",
            "version": settings.VERSION,
            "timestamp": timezone.now().isoformat(),
        }
        return Response(body, status=200 if database else 503)
