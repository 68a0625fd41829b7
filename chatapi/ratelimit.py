"""Rate limits over django-ratelimit, answered as 429 with the seconds left in the window."""

import logging

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework.request import Request

from chatapi.exceptions import LimitExceeded

logger = logging.getLogger(__name__)


def client_ip_key(group: str, request: Request) -> str:
    return request.client_ip


def visitor_session_key(group: str, request: Request) -> str:
    return request.auth.pk


def rate_limit_enforce(request: Request, *, group: str, key, rate: str) -> None:
    """Count this request against `rate` for `key`; raise LimitExceeded past it.

    Call it inside the action, after authentication, so per-session keys exist.
    """
    if not settings.RATE_LIMITING_ENABLED:
        return
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, method=ALL, increment=True)
    except Exception as exc:  # noqa: BLE001 - the cache boundary: any cache failure
        # Fail open: the session cap lives in the database and still bounds each session, so an
        # outage of the shared cache slows nothing down and refuses no visitor.
        logger.error("rate limit not enforced, cache unavailable: %s", type(exc).__name__)
        return
    if usage is not None and usage["should_limit"]:
        logger.info("rate limit reached", extra={"limit_group": group})
        raise LimitExceeded(wait=usage["time_left"])
