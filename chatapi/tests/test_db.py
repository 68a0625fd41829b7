"""connection_release: a pooled connection goes back before the model call, never mid-transaction."""

import pytest
from django.db import connection

from chatapi.db import connection_release


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
