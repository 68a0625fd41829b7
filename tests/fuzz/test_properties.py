"""Hypothesis properties: history pairs every message with its own reply; stripping keeps the text.

chat_app/tests/test_sanitization.py already checks one tag around text (no tag survives) and plain
text kept as is; here the markup is nested, repeated and mixed with text, and the text is whatever
hypothesis finds, through the API as well.
"""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_app.models import ChatMessage
from chat_app.sanitization import control_characters_remove, html_strip, html_strip_once
from chat_app.selectors import history_for_session
from chat_app.services import visitor_text_prepare

pytestmark = pytest.mark.django_db

DB_EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# An exchange: does its reply exist yet, and when is it stored (0 = at once, n = after n later messages).
EXCHANGES = st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=3)), min_size=0, max_size=25)


def store_exchanges(session, plan: list[tuple[bool, int]]) -> dict[int, str]:
    """Visitor messages in order, their replies stored late and out of order; returns id -> reply."""
    expected: dict[int, str] = {}
    pending: list[tuple[int, ChatMessage]] = []
    for number, (answered, delay) in enumerate(plan):
        message = ChatMessage.objects.create(session=session, kind="user", content=f"question {number}")
        expected[message.pk] = ""
        if answered:
            pending.append((delay, message))
        due = [item for item in pending if item[0] == 0]
        pending = [(delay - 1, message) for delay, message in pending if delay > 0]
        for _, due_message in reversed(due):  # replies land in a different order than the questions
            reply = ChatMessage.objects.create(
                session=session, kind="assistant", content=f"answer to {due_message.content}", in_reply_to=due_message
            )
            expected[due_message.pk] = reply.content
    return expected


@DB_EXAMPLES
@given(plan=EXCHANGES, limit=st.integers(min_value=1, max_value=30))
def test_history_pairs_each_message_with_exactly_its_own_reply(visitor, plan, limit):
    ChatMessage.objects.filter(session=visitor.session).delete()
    expected = store_exchanges(visitor.session, plan)

    history = history_for_session(session=visitor.session, limit=limit)

    assert [exchange.id for exchange in history] == sorted(expected)[-limit:]  # the newest `limit`, oldest first
    for exchange in history:
        assert exchange.response == expected[exchange.id]


@DB_EXAMPLES
@given(plan=EXCHANGES)
def test_history_api_pairs_each_message_with_exactly_its_own_reply(visitor_client, visitor, plan):
    ChatMessage.objects.filter(session=visitor.session).delete()
    expected = store_exchanges(visitor.session, plan)

    messages = visitor_client.get("/api/v1/chat/history?limit=200").json()["messages"]

    assert [(m["id"], m["response"]) for m in messages] == sorted(expected.items())
    assert all(m["response"] in ("", f"answer to {m['message']}") for m in messages)


TAGS = st.sampled_from(["b", "i", "em", "a", "span", "div", "p", "u", "strong", "svg", "iframe", "img", "math"])
ATTRIBUTES = st.sampled_from(['', ' class="x"', " title='t'", ' onclick="alert(1)"', " href=javascript:alert(1)",
                              " style=color:red", ' data-x="<b>"'])  # fmt: skip
WORDS = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="<>&"), max_size=20)


@st.composite
def marked_up(draw, depth: int = 0) -> tuple[str, str]:
    """(markup, the text a reader sees): text segments wrapped in random, nested, attributed tags."""
    parts = draw(st.lists(st.one_of(WORDS.map(lambda w: (w, w)), *([] if depth > 2 else [marked_up(depth + 1)])),
                          min_size=1, max_size=4))  # fmt: skip
    inner_markup = "".join(part[0] for part in parts)
    inner_text = "".join(part[1] for part in parts)
    tag, attributes = draw(TAGS), draw(ATTRIBUTES)
    if tag == "img":
        return f"<img src=x{attributes}>{inner_markup}", inner_text
    return f"<{tag}{attributes}>{inner_markup}</{tag}>", inner_text


@settings(max_examples=300, deadline=None)
@given(document=marked_up())
def test_html_strip_removes_every_tag_and_keeps_every_word(document):
    markup, text = document

    stripped = html_strip(markup)

    assert re.search(r"<\s*/?\s*[a-zA-Z]", stripped) is None
    assert "onclick" not in stripped and "javascript:" not in stripped
    # nh3 drops the content of svg/math/iframe (foreign or raw-text); everywhere else the words stay
    if not re.search(r"<(svg|math|iframe)", markup):
        assert stripped == text


PIECES = ["<", ">", "/", "b", "script", "iframe", "<b>", "</b>", "<iframe>", "</iframe>", "alert(1)", " ", "&lt;", "&",
          "x", "onerror=", "<!--", "-->"]  # fmt: skip
FRAGMENTS = st.lists(st.sampled_from(PIECES), max_size=30)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.text(max_size=300), FRAGMENTS.map("".join)))
def test_strip_policy_leaves_no_markup_and_flags_re_formed_script(raw, settings):
    settings.INPUT_MARKUP_POLICY = "strip"

    prepared = visitor_text_prepare(raw)

    if prepared.flagged:
        assert prepared.text == control_characters_remove(raw).strip()  # as received, for staff
    else:
        assert html_strip_once(prepared.text) == prepared.text  # nothing left for another pass to remove
    if re.search(r"<\s{0,10}script", html_strip_once(raw), re.IGNORECASE):
        assert prepared.flagged  # a tag re-formed from fragments (`<<b>script>`) is still caught
