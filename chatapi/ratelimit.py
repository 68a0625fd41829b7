"""Rate limits over django-ratelimit, answered as 429 with the seconds left in the window."""

import ipaddress
import logging

from django.conf import settings
from django_ratelimit import ALL
from django_ratelimit.core import get_usage
from rest_framework.request import Request

from chatapi.exceptions import LimitExceeded, ServiceUnavailable

logger = logging.getLogger(__name__)

LIMIT_UNAVAILABLE = "New sessions and sign-ins are paused for a moment; please retry shortly."
# What a limit does when the shared cache cannot be reached (SECURITY.md, "Rate limits when the
# cache is down"). Closed: the limits on minting sessions and on guessing staff passwords, which
# nothing else bounds. Open (every other group): the chat limits, which the session cap in the
# database still bounds, so ongoing conversations carry on through a cache outage.
FAIL_CLOSED_GROUPS = frozenset({"auth-email", "staff-token"})


class LimitUnavailable(ServiceUnavailable):
    default_detail = LIMIT_UNAVAILABLE
    default_code = "limit_unavailable"
    wait = 30  # Retry-After


# An IPv6 subscriber gets a whole /64 (often more) and picks any address in it at will, so one
# IPv6 address is not one client; the /64 is (contract, Conventions).
IPV6_CLIENT_PREFIX = 64


def client_ip_key(group: str, request: Request) -> str:
    """The client as every per-client limit counts it: its IPv4 address, or its IPv6 /64 network.

    request.client_ip is already canonical, an IPv4-mapped address already IPv4 (chatapi.middleware).
    """
    address = ipaddress.ip_address(request.client_ip)
    if address.version == 4:
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_CLIENT_PREFIX), strict=False))


def visitor_session_key(group: str, request: Request) -> str:
    return request.auth.pk


def rate_limit_enforce(request: Request, *, group: str, key, rate: str) -> None:
    """Count this request against `rate` for `key`; raise LimitExceeded past it.

    Call it inside the action, after authentication, so per-session keys exist. When the cache is
    unreachable, a group in FAIL_CLOSED_GROUPS raises LimitUnavailable (503); any other lets it pass.
    """
    if not settings.RATE_LIMITING_ENABLED:
        return
    try:
        usage = get_usage(request, group=group, key=key, rate=rate, method=ALL, increment=True)
    except Exception as exc:  # the cache boundary: any cache failure (django-redis has its own types)
        if group in FAIL_CLOSED_GROUPS:
            logger.error("rate limit unavailable, refusing: %s", type(exc).__name__, extra={"limit_group": group})
            raise LimitUnavailable() from exc
        logger.error("rate limit not enforced, cache unavailable: %s", type(exc).__name__)
        return
    if usage is not None and usage["should_limit"]:
        logger.info("rate limit reached", extra={"limit_group": group})
        raise LimitExceeded(wait=usage["time_left"])
