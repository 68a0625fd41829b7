"""Request-level guards that run before any view: request ids, body size, client IP."""

import ipaddress
import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_TOO_LARGE = "Request body is too large."
INVALID_CONTENT_LENGTH = "Invalid Content-Length header."


def request_id_guard(get_response: Callable[[HttpRequest], HttpResponse]):
    """Drop a client-sent X-Request-ID that is too long or unsafe, so one is generated instead."""

    def middleware(request: HttpRequest) -> HttpResponse:
        sent = request.META.get("HTTP_X_REQUEST_ID")
        if sent is not None and not SAFE_REQUEST_ID.match(sent):
            del request.META["HTTP_X_REQUEST_ID"]
        return get_response(request)

    return middleware


def request_body_limit(get_response: Callable[[HttpRequest], HttpResponse]):
    """Answer 413 before reading a body larger than MAX_REQUEST_BODY_BYTES.

    DRF parsers read the raw stream, which bypasses DATA_UPLOAD_MAX_MEMORY_SIZE. Behind the
    production server chatapi.body_limit has already refused such bodies on the wire; this is the
    same rule wherever Django is called directly (the test client, another server).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": INVALID_CONTENT_LENGTH}, status=400)
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return JsonResponse({"detail": BODY_TOO_LARGE}, status=413)
        return get_response(request)

    return middleware


NO_ADDRESS = "0.0.0.0"  # noqa: S104 - a placeholder for a peer without one (a unix socket), never bound  # nosec B104


def ip_address_normalized(text: str) -> str | None:
    """The address in canonical form, or None if it is not one.

    An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack listener reports for an IPv4
    peer) is that IPv4 address; an IPv6 zone (`%eth0`) names an interface of ours, not the client.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        address = ipaddress.IPv6Address(address.packed)  # without the zone
    return str(address)


def client_ip_from(meta: dict, num_proxies: int) -> str:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For entry written by our outermost proxy.

    Entries to the left of that one are the client's own words and cannot be trusted.
    """
    remote = ip_address_normalized(meta.get("REMOTE_ADDR") or "") or NO_ADDRESS
    if num_proxies <= 0:
        return remote
    forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < num_proxies:
        return remote
    return ip_address_normalized(forwarded[-num_proxies]) or remote


def client_ip(get_response: Callable[[HttpRequest], HttpResponse]):
    """Set request.client_ip once, proxy-aware, for sessions, rate limits and logs."""

    def middleware(request: HttpRequest) -> HttpResponse:
        request.client_ip = client_ip_from(request.META, settings.NUM_PROXIES)
        return get_response(request)

    return middleware
