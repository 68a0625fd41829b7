"""The session cap under concurrent requests to a live server: never one message more."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from chat_app import services
from chat_app.models import ChatMessage
from sessions_app.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)

CAP = 50
ALREADY_STORED = 45
PARALLEL = 20


def test_chat_cap_holds_under_concurrency(live_server, visitor, fake_model, settings, monkeypatch):
    # Every request passes the early cap check before any stores: only the store's own check is left.
    everyone_checked = threading.Barrier(PARALLEL, timeout=20)
    early_check = services.check_chat_turn

    def check_then_wait(*, session, message):
        text = early_check(session=session, message=message)
        everyone_checked.wait()
        return text

    monkeypatch.setattr(services, "check_chat_turn", check_then_wait)
    settings.MAX_MESSAGES_PER_SESSION = CAP
    settings.RATE_LIMITING_ENABLED = False
    ChatMessage.objects.bulk_create(
        ChatMessage(session=visitor.session, kind="user", content=f"earlier {number}")
        for number in range(ALREADY_STORED)
    )
    ChatSession.objects.filter(pk=visitor.session.pk).update(user_message_count=ALREADY_STORED)
    headers = {"Authorization": f"Bearer {visitor.access_token}", "User-Agent": "Mozilla/5.0 (X11) concurrency"}

    def send(number: int) -> requests.Response:
        return requests.post(
            f"{live_server.url}/api/v1/chat", json={"message": f"racing {number}"}, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        responses = list(pool.map(send, range(PARALLEL)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * (CAP - ALREADY_STORED) + [429] * (PARALLEL - CAP + ALREADY_STORED)
    assert all("Message limit" in r.json()["detail"] for r in responses if r.status_code == 429)
    assert ChatMessage.objects.filter(session=visitor.session, kind="user").count() == CAP
    assert ChatMessage.objects.filter(session=visitor.session, kind="assistant").count() == CAP - ALREADY_STORED
    visitor.session.refresh_from_db()
    assert visitor.session.user_message_count == CAP
    assert len(fake_model.calls) == CAP - ALREADY_STORED
