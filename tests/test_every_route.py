"""No 5xx on any route, whatever the method, body, identity or admin list filter; API errors in DRF's shape."""

import inspect
import json
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import quote as url_quote
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.utils.regex_helper import normalize
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from chat_app.models import ChatMessage
from conftest import BROWSER_UA, body_of
from notifications_app.models import Delivery, DiscordThread
from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "BREW"]
IDENTITIES = ["nobody", "visitor", "staff"]


@dataclass(frozen=True)
class Body:
    content: bytes
    content_type: str | None


def bodies(limit: int) -> dict[str, Body]:
    return {
        "empty": Body(b"", None),
        "invalid-json": Body(b'{"message": "hello", "email":', "application/json"),
        "wrong-content-type": Body(b'{"message": "hello"}', "text/plain"),
        "multipart-without-boundary": Body(b"--x\r\nContent-Disposition: form-data\r\n\r\nhi", "multipart/form-data"),
        "too-large": Body(b'{"message": "' + b"x" * limit + b'"}', "application/json"),
    }


BODY_NAMES = list(bodies(1))


@dataclass(frozen=True)
class World:
    """One of every kind of row, so each route's path parameters name something real."""

    session: ChatSession
    visitor_token: str
    staff: models.Model
    staff_token: str


@pytest.fixture
def world(django_user_model, settings) -> World:
    from sessions_app.services import chat_session_start

    settings.RATE_LIMITING_ENABLED = False  # every request reaches its view; the limits have their own tests
    started = chat_session_start(email="walker@example.com", user_agent=BROWSER_UA, ip_address="203.0.113.9")
    session = started.session
    asked = ChatMessage.objects.create(session=session, kind="user", content="<b>hi</b> & bye")
    answer = ChatMessage.objects.create(session=session, kind="assistant", content="Hello.", in_reply_to=asked)
    ChatMessage.objects.create(session=session, kind="user", content="<script>x</script>", flagged=True)
    Delivery.objects.create(kind=Delivery.Kind.SESSION_OPENED, session=session)
    Delivery.objects.create(kind=Delivery.Kind.MESSAGE_POSTED, session=session, message=answer, status="failed")
    DiscordThread.objects.create(session=session, thread_id=11, channel_id=22, opening_message_id=33)
    Group.objects.create(name="reviewers")
    staff = django_user_model.objects.create_superuser(username="walker-staff", password="a-strong-password-1")
    return World(session, started.access_token, staff, str(RefreshToken.for_user(staff).access_token))


def route_patterns(patterns=None, prefix: str = ""):
    """(regex, URLPattern) of every route, resolvers flattened, as Django joins them."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        regex = pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            yield from route_patterns(pattern.url_patterns, prefix + regex)
        else:
            yield prefix + regex, pattern


def model_of(callback) -> type[models.Model] | None:
    """The model a route is about: its ModelAdmin's, or its DRF view's queryset's."""
    view = inspect.unwrap(callback)
    model_admin = getattr(callback, "model_admin", None) or getattr(view, "__self__", None)
    if isinstance(model_admin, admin.ModelAdmin):
        return model_admin.model
    queryset = getattr(getattr(callback, "cls", None), "queryset", None)
    return queryset.model if queryset is not None else None


def parameter_value(name: str, callback, world: World) -> str:
    """A real id for a path parameter, where there is one; a plain word otherwise (still a route)."""
    model = model_of(callback)
    if name == "content_type_id":
        return str(ContentType.objects.get_for_model(ChatSession).pk)
    if name == "app_label":
        return ChatSession._meta.app_label
    if model is not None and name in {"pk", "id", "object_id"}:
        row = model.objects.order_by("pk").first()
        return quote(row.pk) if row is not None else "1"
    if name == "object_id":
        return quote(world.session.pk)
    return "nothing-here/"


def route_paths(world: World) -> list[str]:
    """Every route as a concrete path, with and without its trailing slash where both resolve."""
    paths = []
    for regex, pattern in route_patterns():
        for template, parameters in normalize(regex):
            path = "/" + template % {name: parameter_value(name, pattern.callback, world) for name in parameters}
            paths.append(path)
            other = path.removesuffix("/") if path.endswith("/") and path != "/" else path + "/"
            try:
                if resolve(other).route == resolve(path).route:
                    paths.append(other)
            except Resolver404:
                pass
    return list(dict.fromkeys(paths))


def identity_client(identity: str, world: World) -> APIClient:
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.raise_request_exception = False  # a 500 is a finding to report with the others, not a crash
    if identity == "visitor":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.visitor_token}")
    elif identity == "staff":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.staff_token}")
        client.force_login(world.staff)  # the admin's own session as well
    return client


def is_contract_error(body) -> bool:
    """`{"detail": "..."}`, or a field map `{"field": ["...", ...]}`."""
    if not isinstance(body, dict) or not body:
        return False
    if "detail" in body:
        return isinstance(body["detail"], str)
    return all(isinstance(messages, list) and all(isinstance(m, str) for m in messages) for messages in body.values())


def contract_problem(path: str, method: str, response) -> str | None:
    """What is wrong with an answer, or None: never 5xx; on the API and /health, errors in DRF's shape."""
    status = response.status_code
    body = body_of(response)
    if status >= 500:
        return f"{status}"
    if status < 400 or not (path.startswith("/api/") or path.startswith("/health")):
        return None
    content_type = response.get("Content-Type", "")
    if not content_type.startswith("application/json"):
        return f"{status} as {content_type or 'no content type'}, not JSON"
    if method == "HEAD":
        return None  # no body to read
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:80]!r}"
    return None if is_contract_error(parsed) else f"{status} not in the error shape: {body[:120]!r}"


@pytest.mark.parametrize("body_name", BODY_NAMES)
@pytest.mark.parametrize("identity", IDENTITIES)
def test_no_route_answers_5xx_to_any_method_body_or_identity(world, settings, identity, body_name):
    body = bodies(settings.MAX_REQUEST_BODY_BYTES)[body_name]
    client = identity_client(identity, world)
    signed_in = SimpleCookie(client.cookies)
    paths = route_paths(world)
    found = []
    for path in paths:
        for method in METHODS:
            undo = transaction.savepoint()  # a logout, an erasure or an ended session must not end the walk
            try:
                extra = {"content_type": body.content_type} if body.content_type else {}
                response = client.generic(method, path, data=body.content, **extra)
                problem = contract_problem(path, method, response)
            finally:
                transaction.savepoint_rollback(undo)
                client.cookies = SimpleCookie(signed_in)  # the admin's logout must not sign staff out
            if problem:
                found.append(f"{method} {path}: {problem}")

    assert len(paths) > 60  # the API, /health, the docs, the demo page and the whole admin
    assert not found, "\n".join(found)


# Ids that name nothing, or that no column can hold (a NUL is refused by PostgreSQL itself).
JUNK_IDS = ["\x00", "99999999999999999999", "x" * 300, "%"]


@pytest.mark.parametrize("identity", IDENTITIES)
def test_no_route_answers_5xx_to_ids_that_name_nothing(world, identity):
    client = identity_client(identity, world)
    signed_in = SimpleCookie(client.cookies)
    found = []
    for regex, _ in route_patterns():
        for template, parameters in normalize(regex):
            for junk in JUNK_IDS if parameters else ():
                path = "/" + template % dict.fromkeys(parameters, url_quote(junk, safe=""))
                for method in ("GET", "POST", "DELETE"):
                    undo = transaction.savepoint()
                    try:
                        problem = contract_problem(path, method, client.generic(method, path))
                    finally:
                        transaction.savepoint_rollback(undo)
                        client.cookies = SimpleCookie(signed_in)
                    if problem:
                        found.append(f"{method} {path[:120]}: {problem}")

    assert not found, "\n".join(found)


# --- Junk in an admin list's query string: a 400, or the list without it (Django's ?e=1), never a 5xx.

JUNK_VALUES = ["junk", "\x00", "99999999999999999999", "-1", "", "%", "'\"<>", "1e400", "\\"]
DATE_JUNK = [
    {"year": "99999999999"},
    {"year": "9999"},
    {"year": "9999", "month": "12", "day": "31"},
    {"year": "1", "month": "1", "day": "1"},
    {"year": "0"},
    {"year": "-1"},
    {"year": "2024", "month": "13"},
    {"year": "2024", "month": "2", "day": "30"},
    {"year": "x"},
    {"year": "2024", "month": "99999999999", "day": "99999999999"},
]
ORDERING_JUNK = ["99", "-99", "x", "0.1.-2", "1.1.1", "-", "0.0.0.0.0.0", "99999999999999999999"]
PAGE_JUNK = ["-1", "0", "99999999999", "abc", "1e9", "99999999999999999999"]
SEARCH_JUNK = ["%", "_", "\x00", "'\"<>;--", "=", "@", "a@", "\\", "x" * 2000, "=\x00", "9" * 30]
UNKNOWN_PARAMS = [
    {"nope": "1"},
    {"pk__gt": "abc"},
    {"id__in": "1,x"},
    {"session__email": "x"},
    {"to_field": "nope"},
    {"_to_field": "password"},
    {"_popup": "1"},
    {"_facets": "1"},
    {"_changelist_filters": "junk=1"},
    {"e": "1", "nope": "1"},
]


def field_junk(model: type[models.Model]) -> list[dict[str, str]]:
    """Look-ups on every field of the model's own, with values no column can take."""
    queries = []
    for field in model._meta.concrete_fields:
        name = field.attname
        queries += [{name: "\x00"}, {f"{name}__gt": "99999999999999999999"}, {f"{name}__regex": "("},
                    {f"{name}__year": "99999999999"}]  # fmt: skip
    return queries


def changelist_junk(model_admin: admin.ModelAdmin, request) -> list[dict[str, str]]:
    queries = [{"o": value} for value in ORDERING_JUNK] + [{"p": value} for value in PAGE_JUNK] + UNKNOWN_PARAMS
    if model_admin.get_search_fields(request):
        queries += [{"q": value} for value in SEARCH_JUNK]
    changelist = model_admin.get_changelist_instance(request)
    for spec in changelist.filter_specs:
        for parameter in spec.expected_parameters():
            queries += [{parameter: value} for value in JUNK_VALUES]
            queries += [{parameter: value, "_facets": "1"} for value in ("junk", "\x00")]
    if hierarchy := model_admin.date_hierarchy:
        queries += [{f"{hierarchy}__{part}": value for part, value in parts.items()} for parts in DATE_JUNK]
    return queries + field_junk(model_admin.model)


def test_no_admin_list_answers_5xx_to_junk_in_its_query_string(world, rf):
    client = identity_client("staff", world)
    request = rf.get("/")
    request.user = world.staff
    found = []
    lists = 0
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for query in changelist_junk(model_admin, request):
            lists += 1
            path = f"{url}?{urlencode(query)}"
            response = client.get(path)
            if response.status_code == 302:  # refused: Django sends the browser to the plain list, `?e=1`
                assert response["Location"] == f"{url}?e=1", path
                path = f"{url}?e=1&{urlencode(query)}"  # the same junk again, as Django's error page has it
                response = client.get(path)
            if response.status_code >= 500:
                found.append(f"GET {path[:160]}: {response.status_code}")

    assert lists > 250
    assert not found, "\n".join(found)


# The API's and the pages' own query parameters, and some they do not take, with values none can hold.
JUNK_QUERY = {
    "format": "junk", "lang": "\x00", "script": "x", "page": "-1", "page_size": "99999999999999999999",
    "limit": "1e400", "after": "\x00", "wait": "99999999999", "from": "99999-01-01", "to": "0000-00-00",
    "created_after": "junk", "created_before": "\x00", "ip_address": "::ffff:999.1.1.1", "email": "\x00@x",
    "is_active": "maybe", "expired": "\x00", "flagged": "2", "next": "//evil.example", "q": "\x00",
}  # fmt: skip


@pytest.mark.parametrize("identity", IDENTITIES)
def test_no_route_answers_5xx_to_junk_query_parameters(world, identity):
    client = identity_client(identity, world)
    signed_in = SimpleCookie(client.cookies)
    found = []
    for path in route_paths(world):
        for method in ("GET", "POST"):
            undo = transaction.savepoint()
            try:
                response = client.generic(method, f"{path}?{urlencode(JUNK_QUERY)}")
                problem = contract_problem(path, method, response)
            finally:
                transaction.savepoint_rollback(undo)
                client.cookies = SimpleCookie(signed_in)
            if problem:
                found.append(f"{method} {path}?...: {problem}")

    assert not found, "\n".join(found)


# --- The findings of the walks above, one by one.


def test_options_on_a_view_without_a_serializer_describes_it_in_json(world):
    client = identity_client("visitor", world)

    for path in ("/api/v1/chat", "/api/v1/chat/stream"):
        response = client.options(path)

        assert response.status_code == 200
        assert response.json()["parses"] == ["application/json"]
        assert "actions" not in response.json()


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/schema"])
def test_the_docs_and_the_schema_answer_options_and_errors_in_json(world, path):
    client = identity_client("nobody", world)

    described = client.options(path)
    refused = client.post(path)

    assert described.status_code == 200
    assert described["Content-Type"] == "application/json"
    assert refused.status_code == 405
    assert refused["Content-Type"] == "application/json"
    assert set(refused.json()) == {"detail"}


def test_an_admin_date_drill_down_past_the_calendar_gets_the_plain_list(world):
    client = identity_client("staff", world)
    url = "/admin/sessions_app/chatsession/"

    for query in (
        "created_at__year=99999999999",
        "created_at__year=9999",
        "created_at__year=9999&created_at__month=12",
    ):
        response = client.get(f"{url}?{query}")

        assert (response.status_code, response["Location"]) == (302, f"{url}?e=1")
    assert client.get(f"{url}?e=1").status_code == 200


def test_an_admin_list_takes_only_the_filters_it_offers(world):
    client = identity_client("staff", world)
    url = "/admin/sessions_app/chatsession/"
    year = world.session.created_at.year

    assert client.get(f"{url}?email__regex=(")["Location"] == f"{url}?e=1"
    assert client.get(f"{url}?ip_address=203.0.113.9")["Location"] == f"{url}?e=1"
    for offered in (
        "is_active__exact=1",
        "flagged=yes",
        "expired=no",
        f"created_at__year={year}",
        "q=walker",
        "o=2.-4",
    ):
        response = client.get(f"{url}?{offered}")
        assert response.status_code == 200, offered
        assert world.session.pk[:12].encode() in response.content, offered
    assert world.session.pk[:12].encode() not in client.get(f"{url}?is_active__exact=0").content
