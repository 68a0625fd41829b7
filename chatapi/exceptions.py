"""The one API exception handler: every error on an API path becomes DRF-shaped JSON."""

import logging

from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.defaults import page_not_found, permission_denied, server_error
from django_ratelimit.exceptions import Ratelimited
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from chatapi.errors import DomainError, LimitExceeded, ServiceUnavailable

logger = logging.getLogger(__name__)

SERVER_ERROR = "Internal server error."
NOT_FOUND = "Not found."
VALUE_OUT_OF_RANGE = "A value in the request is out of range or holds characters that cannot be stored."


def api_exception_handler(exc: Exception, context: dict) -> Response:
    if isinstance(exc, Ratelimited):  # a PermissionDenied subclass: not a 403
        exc = LimitExceeded(retry_after=getattr(exc, "wait", 60))
    elif isinstance(exc, DataError):
        # The database refused a value the client sent (a NUL in an id, a time zone offset past what
        # PostgreSQL holds): bad input, not a server fault.
        logger.warning("request value refused by the database: %s", type(exc).__name__)
        exc = ParseError(VALUE_OUT_OF_RANGE)
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.error("database unavailable: %s", type(exc).__name__)
        exc = ServiceUnavailable()
    request = context.get("request")
    if request is not None:
        # An error is JSON on every API view, the ones that render HTML or YAML (docs, schema) included.
        request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
    if isinstance(exc, DomainError):  # a service's refusal, answered as DRF answers its own errors
        set_rollback()
        return Response(exc.body, status=exc.status_code, headers=exc.headers)
    response = exception_handler(exc, context)
    if response is not None:
        return response
    if isinstance(exc, DatabaseError):
        logger.exception("database error while serving the request")
    else:
        logger.exception("unhandled error while serving the request")
    return Response({"detail": SERVER_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _is_admin_path(request: HttpRequest) -> bool:
    return request.path.startswith("/admin/")


def json_not_found(request: HttpRequest, exception: Exception | None = None):
    if _is_admin_path(request):
        return page_not_found(request, exception)
    return JsonResponse({"detail": NOT_FOUND}, status=404)


def json_server_error(request: HttpRequest):
    if _is_admin_path(request):
        return server_error(request)
    return JsonResponse({"detail": SERVER_ERROR}, status=500)


def json_bad_request(request: HttpRequest, exception: Exception | None = None):
    return JsonResponse({"detail": "Bad request."}, status=400)


def json_permission_denied(request: HttpRequest, exception: Exception | None = None):
    if _is_admin_path(request):
        return permission_denied(request, exception)
    return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
