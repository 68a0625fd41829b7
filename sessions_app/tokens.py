"""The visitor access token: a simplejwt token whose `jti` is the chat session's id."""

from datetime import timedelta

from django.conf import settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token

from sessions_app.models import ChatSession

VISITOR_TOKEN_TYPE = "visitor"  # noqa: S105 - a claim value, not a secret  # nosec B105


class SessionToken(Token):
    token_type = VISITOR_TOKEN_TYPE
    lifetime = timedelta(hours=24)  # replaced per session by its own expiry

    @classmethod
    def for_session(cls, session: ChatSession) -> "SessionToken":
        token = cls()
        token[api_settings.JTI_CLAIM] = session.id
        token.set_exp(from_time=session.created_at, lifetime=session.expires_at - session.created_at)
        return token


def session_lifetime() -> timedelta:
    return timedelta(hours=settings.JWT_EXPIRE_HOURS)
