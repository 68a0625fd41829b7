"""Bearer-token authentication that loads the visitor's session row on every request.

simplejwt's blacklist never checks access tokens and its TokenUser trusts claims, so the session
row is the source of truth: logout, staff ending a session and expiry take effect at once. The one
exception is an action marked `ended_session_accepted` (the visitor's erasure of their own data).
"""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.tokens import UntypedToken

from sessions_app.models import ChatSession
from sessions_app.selectors import chat_session_live_get, chat_session_unexpired_get
from sessions_app.tokens import VISITOR_TOKEN_TYPE

SESSION_ENDED = "This chat session has ended or expired; start a new one."
NOT_A_VISITOR_TOKEN = "This endpoint needs a visitor session token."  # noqa: S105 - a message  # nosec B105


@dataclass(frozen=True)
class Visitor:
    """request.user for a visitor: authenticated, never staff, bound to one session."""

    session: ChatSession
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    is_superuser: bool = False
    is_active: bool = True

    @property
    def pk(self) -> str:
        return self.session.pk


class VisitorSessionAuthentication(JWTAuthentication):
    """Accepts only visitor tokens whose session is live; request.auth is the ChatSession."""

    # On staff endpoints other token types are left to the staff authenticator that follows.
    leave_other_token_types = False

    def authenticate(self, request: Request) -> tuple[Visitor, ChatSession] | None:
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        try:
            token = UntypedToken(raw_token)
        except TokenError as exc:
            raise InvalidToken({"detail": str(exc.args[0])}) from exc
        if token.get("token_type") != VISITOR_TOKEN_TYPE:
            if self.leave_other_token_types:
                return None
            raise AuthenticationFailed(NOT_A_VISITOR_TOKEN, code="token_not_valid")
        session_id = str(token["jti"])
        if _action_accepts_ended_session(request):
            session = chat_session_unexpired_get(session_id=session_id)
        else:
            session = chat_session_live_get(session_id=session_id)
        if session is None:
            raise AuthenticationFailed(SESSION_ENDED, code="session_ended")
        return Visitor(session=session), session


class VisitorSessionScheme(OpenApiAuthenticationExtension):
    """VisitorSessionAuthentication in the OpenAPI schema."""

    target_class = VisitorSessionAuthentication
    name = "visitorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The access_token from POST /api/v1/auth/email.",
        }


def ended_session_accepted(handler):
    """Mark a visitor action that also takes the token of a session that ended but has not expired.

    For erasure only: a visitor may delete their data after logout or after staff ended the session,
    for as long as the token lives (its `exp` is the session's expiry). Every other action, and any
    token once its session is deleted or expired, gets 401.
    """
    handler.accepts_ended_session = True
    return handler


def _action_accepts_ended_session(request: Request) -> bool:
    view = request.parser_context.get("view")  # DRF puts the view here; absent outside one
    handler = getattr(view, getattr(view, "action", None) or "", None)
    return getattr(handler, "accepts_ended_session", False)


class VisitorOrPassAuthentication(VisitorSessionAuthentication):
    leave_other_token_types = True
