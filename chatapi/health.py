"""`/health`: is the database reachable, is the cache, and what each app's probe says (a model configured)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthProbe:
    check: Callable[[], bool]
    up: str
    down: str
    applies: Callable[[], bool]


_probes: dict[str, HealthProbe] = {}


def _always() -> bool:
    return True


def health_probe_register(
    name: str, check: Callable[[], bool], *, up: str, down: str, applies: Callable[[], bool] = _always
) -> None:
    """Answer `name` in /health: `up` while `check()` is true, else `down`; it never makes the answer 503.
    While `applies()` is false (a feature switched off) the answer leaves `name` out.

    The apps above chatapi call it from their AppConfig.ready(), so chatapi imports none of them.
    """
    _probes[name] = HealthProbe(check, up, down, applies)


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


class HealthOutput(serializers.Serializer):
    status = serializers.ChoiceField(["healthy", "unhealthy"])
    database = serializers.ChoiceField(["connected", "disconnected"])
    cache = serializers.ChoiceField(["connected", "disconnected"])
    version = serializers.CharField()
    timestamp = serializers.DateTimeField()

    def get_fields(self) -> dict:
        """The probes' answers stand between the cache and the version, as in the body."""
        fields = super().get_fields()
        tail = {name: fields.pop(name) for name in ("version", "timestamp")}
        probes = {
            name: serializers.ChoiceField([probe.up, probe.down], required=probe.applies is _always)
            for name, probe in _probes.items()
        }
        return {**fields, **probes, **tail}


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
            **{name: probe.up if probe.check() else probe.down for name, probe in _probes.items() if probe.applies()},
            "version": settings.VERSION,
            "timestamp": timezone.now().isoformat(),
        }
        return Response(body, status=200 if database else 503)
