"""connection_release: a pooled connection goes back before the model call, never mid-transaction; and
update_returning, an UPDATE that reads back what it wrote."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from chatapi.db import connection_release, update_returning
from sessions_app.models import ChatSession
from sessions_app.tests.factories import session_make


@pytest.fixture
def close_calls(monkeypatch) -> list[bool]:
    calls: list[bool] = []
    monkeypatch.setattr(connection, "close", lambda: calls.append(True))
    return calls


def _pool_option(monkeypatch, pooled: bool) -> None:
    options = {key: value for key, value in connection.settings_dict.get("OPTIONS", {}).items() if key != "pool"}
    if pooled:
        options["pool"] = {"max_size": 4}
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)


def test_connection_release_hands_back_pooled_connection(monkeypatch, close_calls):
    _pool_option(monkeypatch, pooled=True)

    connection_release()

    assert close_calls == [True]


@pytest.mark.django_db
def test_connection_release_keeps_connection_inside_transaction(monkeypatch, close_calls):
    _pool_option(monkeypatch, pooled=True)
    assert connection.in_atomic_block  # the test's own transaction

    connection_release()

    assert close_calls == []


def test_connection_release_keeps_unpooled_connection(monkeypatch, close_calls):
    _pool_option(monkeypatch, pooled=False)

    connection_release()

    assert close_calls == []


@pytest.mark.django_db
def test_update_returning_reads_back_the_rows_it_changed_in_one_statement():
    first, second = session_make().session, session_make(email="b@example.com").session
    ChatSession.objects.filter(pk=second.pk).update(event_seq=41)

    with CaptureQueriesContext(connection) as queries:
        changed = update_returning(
            ChatSession.objects.filter(pk=second.pk, is_active=True),
            ["event_seq", "mode"],
            event_seq=F("event_seq") + 1,
        )
    unchanged = update_returning(ChatSession.objects.filter(pk=first.pk, is_active=False), ["event_seq"], event_seq=9)

    assert changed == [(42, "ai")] and unchanged == []
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE") and "RETURNING" in queries[0]["sql"]
    assert ChatSession.objects.get(pk=first.pk).event_seq == 0
