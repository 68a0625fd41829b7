"""OWASP API2:2023 Broken Authentication: only a live, well-signed token of the right kind gets in.

sessions_app/tests/test_authentication.py proves each token defect against GET /auth/session
(tampered signature and payload, `alg: none`, another HMAC algorithm, wrong key, expired, missing
`jti`/`exp`/`aud`/`iss`, staff tokens as visitor tokens, ended, expired and deleted sessions). Here
every visitor path is held to the same, with no side effect (but erasure, which an ended session's
token may still do until it expires), and the staff side gets the reverse cases: visitor tokens as
staff or refresh tokens, expired staff tokens, deactivated staff.
"""

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from chat_app.models import ChatMessage
from conftest import BROWSER_UA
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from sessions_app.tests.test_authentication import b64, claims_for, signed

pytestmark = pytest.mark.django_db

VISITOR_PATHS = [
    ("get", "/api/v1/auth/session"), ("delete", "/api/v1/auth/session"), ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/chat"), ("post", "/api/v1/chat/stream"), ("get", "/api/v1/chat/history"),
]  # fmt: skip
STAFF_PATHS = [
    ("get", "/api/v1/staff/sessions"), ("get", "/api/v1/staff/sessions/{id}"),
    ("get", "/api/v1/staff/sessions/{id}/messages"), ("post", "/api/v1/staff/sessions/{id}/end"),
]  # fmt: skip


def _expired(visitor, staff_user):
    past = timezone.now() - timedelta(minutes=5)
    return signed(
        claims_for(visitor.session, iat=int((past - timedelta(hours=1)).timestamp()), exp=int(past.timestamp()))
    )


def _logged_out(visitor, staff_user):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.LOGOUT)
    return visitor.access_token


def _ended_by_staff(visitor, staff_user):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.STAFF)
    return visitor.access_token


def _deleted(visitor, staff_user):
    ChatSession.objects.filter(pk=visitor.session.pk).delete()
    return visitor.access_token


def _tampered(visitor, staff_user):
    header, payload, signature = visitor.access_token.split(".")
    return f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def _alg_none(visitor, staff_user):
    header = b64(b'{"alg": "none", "typ": "JWT"}')
    return f"{header}.{visitor.access_token.split('.')[1]}."


def _wrong_key(visitor, staff_user):
    return signed(claims_for(visitor.session), key="another-key-another-key-another-key-0123456789")


def _no_jti(visitor, staff_user):
    return signed(claims_for(visitor.session, jti=None))


def _staff_access(visitor, staff_user):
    return str(RefreshToken.for_user(staff_user).access_token)


def _staff_refresh(visitor, staff_user):
    return str(RefreshToken.for_user(staff_user))


BAD_VISITOR_TOKENS = [_expired, _logged_out, _ended_by_staff, _deleted, _tampered, _alg_none, _wrong_key, _no_jti,
                      _staff_access, _staff_refresh]  # fmt: skip


ERASURE = ("delete", "/api/v1/auth/session")
# The contract's one exception: erasure works after logout or after staff ended the session, until
# the token expires (test_ended_session_token_still_erases below).
STILL_ERASES = [_logged_out, _ended_by_staff]
REFUSED_CASES = [
    pytest.param(make_token, method, path, id=f"{method}-{path}-{make_token.__name__.strip('_')}")
    for method, path in VISITOR_PATHS
    for make_token in BAD_VISITOR_TOKENS
    if not ((method, path) == ERASURE and make_token in STILL_ERASES)
]


@pytest.mark.parametrize(("make_token", "method", "path"), REFUSED_CASES)
def test_visitor_paths_refuse_bad_token_with_401_and_no_effect(
    visitor, staff_user, fake_model, make_token, method, path
):
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(visitor, staff_user)}")
    sessions_before = set(ChatSession.objects.values_list("pk", "is_active"))

    response = getattr(client, method)(path, {"message": "hello"} if method == "post" else None, format="json")

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) >= {"detail"}
    assert not ChatMessage.objects.exists()
    assert set(ChatSession.objects.values_list("pk", "is_active")) == sessions_before
    assert fake_model.calls == []


@pytest.mark.parametrize("make_token", STILL_ERASES, ids=lambda make: make.__name__.strip("_"))
def test_ended_session_token_still_erases(visitor, staff_user, make_token):
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(visitor, staff_user)}")

    assert client.delete(ERASURE[1]).status_code == 204
    assert not ChatSession.objects.filter(pk=visitor.session.pk).exists()
    for method, path in VISITOR_PATHS:  # erased: the token is refused from then on, erasure included
        response = getattr(client, method)(path, {"message": "hello"} if method == "post" else None, format="json")
        assert response.status_code == 401, (method, path)


def test_visitor_token_in_query_string_is_not_accepted(api_client, visitor):
    response = api_client.get(f"/api/v1/auth/session?access_token={visitor.access_token}&token={visitor.access_token}")

    assert response.status_code == 401


def test_visitor_token_forged_as_staff_access_token_is_refused(api_client, visitor, staff_user):
    # A visitor token relabelled as a staff access token must still carry a staff signature.
    forged = jwt.encode(
        {**AccessToken.for_user(staff_user).payload, "jti": visitor.session.pk},
        "not-the-server-key-not-the-server-key-0123456789", algorithm=settings.SIMPLE_JWT["ALGORITHM"],
    )  # fmt: skip
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert api_client.get("/api/v1/staff/sessions").status_code == 401


@pytest.mark.parametrize("token_of", ["visitor", "staff_access"])
def test_staff_refresh_refuses_tokens_that_are_not_refresh_tokens(api_client, visitor, staff_user, token_of):
    token = visitor.access_token if token_of == "visitor" else str(RefreshToken.for_user(staff_user).access_token)

    response = api_client.post("/api/v1/staff/token/refresh", {"refresh": token}, format="json")

    assert response.status_code == 401
    assert "access" not in response.json()


@pytest.mark.parametrize(("method", "path"), STAFF_PATHS)
def test_staff_paths_refuse_expired_staff_access_token(api_client, visitor, staff_user, method, path):
    token = AccessToken.for_user(staff_user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=15))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = getattr(api_client, method)(path.format(id=visitor.session.pk))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    visitor.session.refresh_from_db()
    assert visitor.session.is_active


def test_staff_token_stops_working_when_staff_is_deactivated(staff_client, staff_user):
    assert staff_client.get("/api/v1/staff/sessions").status_code == 200
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    assert staff_client.get("/api/v1/staff/sessions").status_code == 401


def test_staff_token_stops_working_when_staff_is_demoted(staff_client, staff_user):
    staff_user.is_staff = False
    staff_user.save(update_fields=["is_staff"])

    assert staff_client.get("/api/v1/staff/sessions").status_code == 403


def test_staff_token_refused_for_deactivated_staff_at_refresh(api_client, staff_user):
    refresh = str(RefreshToken.for_user(staff_user))
    staff_user.is_active = False
    staff_user.save(update_fields=["is_active"])

    response = api_client.post("/api/v1/staff/token/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 401


STAFF_PASSWORD = "a-strong-staff-password-1"  # conftest's staff_user


def _deleted_user(user) -> None:
    user.delete()


def _deactivated(user) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def _demoted(user) -> None:
    user.is_staff = False
    user.save(update_fields=["is_staff"])


def _password_changed(user) -> None:
    user.set_password("another-strong-password-2")
    user.save(update_fields=["password"])


STAFF_ACCOUNT_CHANGES = [_deleted_user, _deactivated, _demoted, _password_changed]


def staff_sign_in(client: APIClient) -> dict:
    response = client.post("/api/v1/staff/token", {"username": "staff", "password": STAFF_PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("change", STAFF_ACCOUNT_CHANGES, ids=lambda change: change.__name__.strip("_"))
def test_staff_refresh_refused_once_the_account_changed(api_client, staff_user, change):
    pair = staff_sign_in(api_client)
    assert (
        api_client.post("/api/v1/staff/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 200
    )
    change(staff_user)

    response = api_client.post("/api/v1/staff/token/refresh", {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "access" not in response.json() and set(response.json()) >= {"detail"}


@pytest.mark.parametrize(
    ("change", "status"), [(_deleted_user, 401), (_deactivated, 401), (_demoted, 403), (_password_changed, 401)],
    ids=["deleted_user", "deactivated", "demoted", "password_changed"],
)  # fmt: skip
def test_staff_access_token_refused_once_the_account_changed(api_client, staff_user, change, status):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {staff_sign_in(api_client)['access']}")
    assert api_client.get("/api/v1/staff/sessions").status_code == 200
    change(staff_user)

    response = api_client.get("/api/v1/staff/sessions")

    assert response.status_code == status, response.content
    assert set(response.json()) >= {"detail"}
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_staff_tokens_issued_after_a_password_change_work(api_client, staff_user):
    _password_changed(staff_user)
    response = api_client.post(
        "/api/v1/staff/token", {"username": "staff", "password": "another-strong-password-2"}, format="json"
    )
    pair = response.json()

    assert (
        api_client.post("/api/v1/staff/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 200
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert api_client.get("/api/v1/staff/sessions").status_code == 200


def test_staff_login_does_not_reveal_which_usernames_exist(api_client, staff_user):
    wrong_password = api_client.post(
        "/api/v1/staff/token", {"username": staff_user.username, "password": "wrong-password-0"}, format="json"
    )
    no_such_user = api_client.post(
        "/api/v1/staff/token", {"username": "nobody-here", "password": "wrong-password-0"}, format="json"
    )

    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()
