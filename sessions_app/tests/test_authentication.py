"""Visitor bearer tokens: only a well-signed visitor token of a live session gets in."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework_simplejwt.tokens import RefreshToken

from sessions_app.authentication import NOT_A_VISITOR_TOKEN, SESSION_ENDED, VisitorSessionAuthentication
from sessions_app.models import ChatSession
from sessions_app.services import chat_session_end
from sessions_app.tokens import VISITOR_TOKEN_TYPE, SessionToken

pytestmark = pytest.mark.django_db

SESSION = "/api/v1/auth/session"
STAFF_SESSIONS = "/api/v1/staff/sessions"


def claims_for(session: ChatSession, **overrides) -> dict:
    now = timezone.now()
    claims = {
        "token_type": VISITOR_TOKEN_TYPE,
        "jti": session.pk,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
        "aud": settings.SIMPLE_JWT["AUDIENCE"],
        "iss": settings.SIMPLE_JWT["ISSUER"],
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def signed(claims: dict, *, key: str | None = None, algorithm: str | None = None) -> str:
    return jwt.encode(
        claims, key or settings.SIMPLE_JWT["SIGNING_KEY"], algorithm=algorithm or settings.SIMPLE_JWT["ALGORITHM"]
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def get_session(api_client, authorization: str | None):
    if authorization is not None:
        api_client.credentials(HTTP_AUTHORIZATION=authorization)
    return api_client.get(SESSION)


def assert_refused(response) -> dict:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_authentication_accepts_live_session_token(api_client, visitor):
    response = get_session(api_client, f"Bearer {visitor.access_token}")

    assert response.status_code == 200
    assert response.json()["session_id"] == visitor.session.pk


def test_authentication_accepts_hand_built_token_with_right_claims(api_client, visitor):
    # The control for the forged tokens below: the same builder with nothing wrong gets in.
    assert get_session(api_client, f"Bearer {signed(claims_for(visitor.session))}").status_code == 200


def test_authentication_token_built_by_session_token_matches_session(visitor):
    token = SessionToken(visitor.access_token)

    assert token["jti"] == visitor.session.pk
    assert token["exp"] == int(visitor.session.expires_at.timestamp())


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "Token abc.def.ghi", "Bearer not-a-jwt",
     "Bearer aaaa.bbbb.cccc"],
    ids=["none", "empty", "bare-scheme", "scheme-space", "basic", "three-parts", "other-scheme", "garbage",
         "garbage-dots"],
)  # fmt: skip
def test_authentication_refuses_missing_or_malformed_header(api_client, authorization):
    assert_refused(get_session(api_client, authorization))


def test_authentication_refuses_tampered_signature(api_client, visitor):
    header, payload, signature = visitor.access_token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert_refused(get_session(api_client, f"Bearer {header}.{payload}.{flipped}"))


def test_authentication_refuses_tampered_payload(api_client, visitor):
    other = ChatSession.objects.create(
        email="x@example.com", email_hash="x", browser_hash="x", ip_address="127.0.0.1",
        expires_at=timezone.now() + timedelta(hours=1),
    )  # fmt: skip
    header, _, signature = visitor.access_token.split(".")
    forged = b64(json.dumps(claims_for(other)).encode())

    assert_refused(get_session(api_client, f"Bearer {header}.{forged}.{signature}"))


def test_authentication_refuses_alg_none(api_client, visitor):
    unsigned = jwt.encode(claims_for(visitor.session), None, algorithm="none")
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    by_hand = f"{header}.{b64(json.dumps(claims_for(visitor.session)).encode())}."

    assert_refused(get_session(api_client, f"Bearer {unsigned}"))
    assert_refused(get_session(api_client, f"Bearer {by_hand}"))


def test_authentication_refuses_other_hmac_algorithm(api_client, visitor):
    other = "HS512" if settings.SIMPLE_JWT["ALGORITHM"] != "HS512" else "HS256"

    assert_refused(get_session(api_client, f"Bearer {signed(claims_for(visitor.session), algorithm=other)}"))


def test_authentication_refuses_wrong_key(api_client, visitor):
    token = signed(claims_for(visitor.session), key="a-different-key-of-a-decent-length-0123456789")

    assert_refused(get_session(api_client, f"Bearer {token}"))


def test_authentication_refuses_expired_token(api_client, visitor):
    past = timezone.now() - timedelta(minutes=5)  # well beyond the leeway
    token = signed(claims_for(visitor.session, iat=int((past - timedelta(hours=1)).timestamp()),
                              exp=int(past.timestamp())))  # fmt: skip

    assert_refused(get_session(api_client, f"Bearer {token}"))


def test_authentication_refuses_session_token_past_its_exp(api_client, visitor):
    token = SessionToken.for_session(visitor.session)
    token.set_exp(from_time=timezone.now() - timedelta(hours=2), lifetime=timedelta(hours=1))

    assert_refused(get_session(api_client, f"Bearer {token}"))


@pytest.mark.parametrize(
    "overrides",
    [{"jti": None}, {"exp": None}, {"token_type": None}, {"token_type": "access"}, {"aud": "another-service"},
     {"aud": None}, {"iss": "someone-else"}, {"iss": None}, {"jti": "no-such-session"}],
    ids=["no-jti", "no-exp", "no-type", "access-type", "wrong-aud", "no-aud", "wrong-iss", "no-iss", "unknown-jti"],
)  # fmt: skip
def test_authentication_refuses_wrong_claims(api_client, visitor, overrides):
    assert_refused(get_session(api_client, f"Bearer {signed(claims_for(visitor.session, **overrides))}"))


def test_authentication_refuses_staff_access_token(api_client, staff_user):
    token = RefreshToken.for_user(staff_user).access_token

    assert assert_refused(get_session(api_client, f"Bearer {token}"))["detail"] == NOT_A_VISITOR_TOKEN


def test_authentication_refuses_staff_refresh_token(api_client, staff_user):
    token = RefreshToken.for_user(staff_user)

    assert_refused(get_session(api_client, f"Bearer {token}"))
    assert_refused(api_client.post("/api/v1/chat", {"message": "hi"}, format="json"))


def test_authentication_refuses_session_ended_by_staff(api_client, visitor):
    chat_session_end(session=visitor.session, reason=ChatSession.EndReason.STAFF)

    assert assert_refused(get_session(api_client, f"Bearer {visitor.access_token}"))["detail"] == SESSION_ENDED


def test_authentication_refuses_session_expired_in_database(api_client, visitor):
    ChatSession.objects.filter(pk=visitor.session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert assert_refused(get_session(api_client, f"Bearer {visitor.access_token}"))["detail"] == SESSION_ENDED


def test_authentication_refuses_deleted_session(api_client, visitor):
    ChatSession.objects.filter(pk=visitor.session.pk).delete()

    assert_refused(get_session(api_client, f"Bearer {visitor.access_token}"))


def test_authentication_one_query_per_request(visitor_client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = visitor_client.get(SESSION)

    assert response.status_code == 200


def test_authentication_no_query_for_bad_token(api_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert_refused(get_session(api_client, "Bearer aaaa.bbbb.cccc"))


def test_authentication_request_user_is_the_visitor_of_the_session(visitor):
    request = APIRequestFactory().get(SESSION, HTTP_AUTHORIZATION=f"Bearer {visitor.access_token}")

    user, session = VisitorSessionAuthentication().authenticate(Request(request))

    assert session == visitor.session
    assert (user.pk, user.is_authenticated, user.is_staff) == (visitor.session.pk, True, False)


def test_authentication_staff_endpoints_refuse_visitor_and_accept_staff(api_client, visitor, staff_user):
    staff_token = RefreshToken.for_user(staff_user).access_token

    assert get_session(api_client, f"Bearer {visitor.access_token}").status_code == 200
    assert api_client.get(STAFF_SESSIONS).status_code == 403
    assert get_session(api_client, f"Bearer {staff_token}").status_code == 401
    assert api_client.get(STAFF_SESSIONS).status_code == 200
    api_client.credentials()
    assert_refused(api_client.get(STAFF_SESSIONS))
