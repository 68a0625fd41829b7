"""The middleware stack, native under ASGI: request ids, body size, client IP, and Django's own, lean.

Under ASGI Django runs a MiddlewareMixin's process_request and process_response each in a worker
thread: two thread hops per middleware per request, about 0.2 ms of CPU each. The guards here are
written for both modes; Django's header middleware runs its hooks inline (they only read and set
headers); the cookie, user and message middleware serve the staff console and skip the rest.
"""

import ipaddress
from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware as DjangoXFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware as DjangoSecurityMiddleware
from django.utils.decorators import sync_and_async_middleware

from chatapi.body_limit import BODY_TOO_LARGE, INVALID_CONTENT_LENGTH, SAFE_REQUEST_ID


def request_guard(prepare: Callable[[HttpRequest], HttpResponse | None]):
    """A middleware that prepares the request, or answers it early when `prepare` returns a response.

    Native in both modes: no thread hop under ASGI.
    """

    @sync_and_async_middleware
    def factory(get_response):
        if iscoroutinefunction(get_response):

            async def middleware(request: HttpRequest) -> HttpResponse:
                return prepare(request) or await get_response(request)

        else:

            def middleware(request: HttpRequest) -> HttpResponse:
                return prepare(request) or get_response(request)

        return middleware

    factory.__doc__ = prepare.__doc__
    return factory


def _request_id_checked(request: HttpRequest) -> None:
    """Drop a client-sent X-Request-ID that is too long or unsafe, so one is generated instead."""
    sent = request.META.get("HTTP_X_REQUEST_ID")
    if sent is not None and not SAFE_REQUEST_ID.match(sent):
        del request.META["HTTP_X_REQUEST_ID"]


def _body_size_checked(request: HttpRequest) -> HttpResponse | None:
    """Answer 413 before reading a body larger than MAX_REQUEST_BODY_BYTES.

    DRF parsers read the raw stream, which bypasses DATA_UPLOAD_MAX_MEMORY_SIZE. Behind the
    production server chatapi.body_limit has already refused such bodies on the wire; this is the
    same rule wherever Django is called directly (the test client, another server).
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"detail": INVALID_CONTENT_LENGTH}, status=400)
    if length > settings.MAX_REQUEST_BODY_BYTES:
        return JsonResponse({"detail": BODY_TOO_LARGE}, status=413)
    return None


def _host_allowed(request: HttpRequest) -> None:
    """Refuse (400) a Host header outside ALLOWED_HOSTS before anything reads it."""
    request.get_host()  # raises DisallowedHost, which Django answers with handler400


request_id_guard = request_guard(_request_id_checked)
allowed_host = request_guard(_host_allowed)
request_body_limit = request_guard(_body_size_checked)


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


def _client_ip_set(request: HttpRequest) -> None:
    """Set request.client_ip once, proxy-aware, for sessions, rate limits and logs."""
    request.client_ip = client_ip_from(request.META, settings.NUM_PROXIES)


client_ip = request_guard(_client_ip_set)


class InlineHooksMixin:
    """Run a MiddlewareMixin's hooks in the event loop, not each in a worker thread.

    Only for middleware whose hooks compute and set headers, never wait on I/O. Relies on
    MiddlewareMixin calling `__acall__` in async mode (pinned by chatapi/tests/test_middleware_stack.py).
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        response = self.process_request(request) if hasattr(self, "process_request") else None
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class ContentSecurityPolicyMiddleware(InlineHooksMixin, CSPMiddleware):
    pass


class SecurityMiddleware(InlineHooksMixin, DjangoSecurityMiddleware):
    """Django's, run in the event loop. Its hooks in a thread made every request take a thread of its
    own (asgiref's per-request executor), held as long as the response: one per open stream."""


class XFrameOptionsMiddleware(InlineHooksMixin, DjangoXFrameOptionsMiddleware):
    pass


STAFF_CONSOLE_PREFIX = "/admin/"  # where chatapi.urls mounts the admin


class StaffConsoleOnlyMixin:
    """Skip this middleware outside the staff console: only the admin uses cookies, logged-in users
    and flash messages (the API authenticates with bearer tokens)."""

    def __call__(self, request: HttpRequest):
        if not request.path_info.startswith(STAFF_CONSOLE_PREFIX):
            return self.get_response(request)  # a coroutine under ASGI: the caller awaits it
        return super().__call__(request)


class SessionMiddleware(StaffConsoleOnlyMixin, DjangoSessionMiddleware):
    pass


class AuthenticationMiddleware(StaffConsoleOnlyMixin, DjangoAuthenticationMiddleware):
    pass


class MessageMiddleware(StaffConsoleOnlyMixin, DjangoMessageMiddleware):
    pass
