"""Fixtures for the OWASP API Top 10 tests: a second visitor, and reading streamed bodies."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from conftest import BROWSER_UA, body_of  # noqa: F401 - the security tests import body_of from here
from sessions_app.models import ChatSession

OTHER_EMAIL = "other.person@example.org"
OTHER_IP = "198.51.100.77"


@dataclass
class OtherVisitor:
    client: APIClient
    session: ChatSession
    token: str


@pytest.fixture
def other_visitor(db) -> OtherVisitor:
    """Another visitor's session, with one exchange in it, that the caller must never reach."""
    from chat_app.models import ChatMessage
    from sessions_app.services import chat_session_start

    started = chat_session_start(email=OTHER_EMAIL, user_agent=BROWSER_UA, ip_address=OTHER_IP)
    message = ChatMessage.objects.create(session=started.session, kind="user", content="other's secret question")
    ChatMessage.objects.create(session=started.session, kind="assistant", content="other's answer", in_reply_to=message)
    started.session.user_message_count = 1
    started.session.save(update_fields=["user_message_count"])
    client = APIClient(HTTP_USER_AGENT=BROWSER_UA)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {started.access_token}")
    return OtherVisitor(client=client, session=started.session, token=started.access_token)
