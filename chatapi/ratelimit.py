"""Rate limits over django-ratelimit's atomic counters in the shared cache, answered as 429 with the
seconds left in the window: declared on views as DRF throttle classes, or checked by hand (admin log-in)."""

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from chatapi.errors import LimitExceeded, ServiceUnavailable

logger = logging.getLogger(__name__)

LIMIT_UNAVAILABLE = "New sessions and sign-ins are paused for a moment; please retry shortly."
# What a limit does when the shared cache cannot be reached (SECURITY.md, "Rate limits when the
# cache is down"). Closed: the limits on minting sessions and on guessing staff passwords (the
# staff token and the admin log-in), which nothing else bounds. Open (every other group): the chat
# limits, which the session cap in the database still bounds, so conversations carry on.
FAIL_CLOSED_GROUPS = frozenset({"auth-email", "staff-token", "admin-login-client", "admin-login-user"})


class LimitUnavailable(ServiceUnavailable):
    default_detail = LIMIT_UNAVAILABLE
    code = "limit_unavailable"
    retry_after = 30


# An IPv6 subscriber gets a whole /64 (often more) and picks any address in it at will, so one
# IPv6 address is not one client; the /64 is (contract, Conventions).
IPV6_CLIENT_PREFIX = 64


def client_ip_key(group: str, request: HttpRequest | Request) -> str:
    """The client as every per-client limit counts it: its IPv4 address, or its IPv6 /64 network.

    request.client_ip is already canonical, an IPv4-mapped address already IPv4 (chatapi.middleware).
    """
    address = ipaddress.ip_address(request.client_ip)
    if address.version == 4:
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


def visitor_session_key(group: str, request: Request) -> str:
    return request.auth.pk


class RateLimit(BaseThrottle):
    """A limit declared on a view (`throttle_classes`): `rate_setting`'s rate per `key`, counted under `group`.

    The same count as rate_limit_enforce, run where DRF runs throttles (after authentication and
    permissions, before the action), so the OpenAPI schema lists the view's 429 from this same
    declaration (chatapi.schema).
    """

    group: str
    rate_setting: str
    key = staticmethod(client_ip_key)

    def allow_request(self, request: Request, view) -> bool:
        rate_limit_enforce(request, group=self.group, key=self.key, rate=getattr(settings, self.rate_setting))
        return True  # past the limit rate_limit_enforce raised LimitExceeded: a 429 with Retry-After


def rate_limit_enforce(request: Request, *, group: str, key, rate: str) -> None:
    """Count this request against `rate` for `key`; raise LimitExceeded past it.

    django-ratelimit counts with one atomic increment in the shared cache, so every server process
    counts alike. When the cache is unreachable, a group in FAIL_CLOSED_GROUPS raises
    LimitUnavailable (503); any other lets the request pass.
    """
    usage = _usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is not None and usage["should_limit"]:
        _refuse(group, usage)


def rate_limit_check(request: HttpRequest, *, group: str, key, rate: str) -> None:
    """Raise LimitExceeded if `rate` events were already counted for `key` in this window; count nothing.

    For limits on failures only (failed log-ins): check before the attempt, rate_limit_count after it
    fails. The cache's fail mode is the group's, as in rate_limit_enforce.
    """
    usage = _usage(request, group=group, key=key, rate=rate, increment=False)
    if usage is not None and usage["count"] >= usage["limit"]:
        _refuse(group, usage)


def rate_limit_count(request: HttpRequest, *, group: str, key, rate: str) -> None:
    """Count one event (a failure) for `key`, refusing nothing: rate_limit_check refuses the next attempt."""
    if not settings.RATE_LIMITING_ENABLED:
        return
    try:
        get_usage(request, group=group, key=key, rate=rate, method=ALL, increment=True)
    except Exception as exc:  # noqa: BLE001 - the cache boundary; the check before the attempt applied the fail mode
        logger.error("rate limit count lost, cache unavailable: %s", type(exc).__name__, extra={"limit_group": group})


def _usage(request: HttpRequest, *, group: str, key, rate: str, increment: bool) -> dict | None:
    """django-ratelimit's count for `key`; None when limits are off, or the cache is down and the group fails open."""
    if not settings.RATE_LIMITING_ENABLED:
        return None
    try:
        return get_usage(request, group=group, key=key, rate=rate, method=ALL, increment=increment)
    except Exception as exc:  # the cache boundary: any cache failure (django-redis has its own types)
        if group in FAIL_CLOSED_GROUPS:
            logger.error("rate limit unavailable, refusing: %s", type(exc).__name__, extra={"limit_group": group})
            raise LimitUnavailable() from exc
        logger.error("rate limit not enforced, cache unavailable: %s", type(exc).__name__)
        return None


def _refuse(group: str, usage: dict) -> None:
    logger.info("rate limit reached", extra={"limit_group": group})
    raise LimitExceeded(retry_after=usage["time_left"])
