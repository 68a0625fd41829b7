"""Visitor text: control characters, HTML stripping to plain text, and bounded dangerous patterns."""

import re
import time

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from chat_app.sanitization import DANGEROUS_PATTERNS, control_characters_remove, html_strip, is_dangerous

pytestmark = pytest.mark.django_db

# (category, an attack the category must catch, ordinary text that mentions the same words)
CATEGORY_EXAMPLES = [
    ("xss", "<script>alert('xss')</script>", "I write scripts in Python and javascript is fun"),
    ("xss", '<img src=x onerror="alert(1)">', "The load on error was high"),
    ("sql", "'; DROP TABLE users; --", "Can I drop the table booking or update it?"),
    ("sql", "' OR 1=1 --", "Either one or two = fine"),
    ("command", "; rm -rf / ", "Is bash better than zsh? I also have a cat"),
    ("command", "$(whoami)", "It costs $ (about) five"),
    ("path_traversal", "../../../etc/passwd", "Wait... what? See etc/passwd docs"),
    ("template", "{{constructor.constructor('return process')().exit()}}", "Use { and } in JSON"),
    ("template", "${7*7}", "It costs $7, {not} more"),
    ("nosql", '{"password": {"$ne": null}}', "It costs $5 or $10 in total"),
    ("ldap", "*)(uid=*))(|(uid=*", "(see note) (and more)"),
]

ORDINARY_PROSE = [
    "I have data: 3 items",
    "Tom & Jerry",
    "what's 5 > 3?",
    "3 < 5 & 4 > 2",
    "Hello! Can you help me choose a plan? I'm on the free one; it's OK.",
    "My e-mail is a@b.co, and my order is #1234 (paid).",
]

ADVERSARIAL_INPUTS = [
    "{{" * 2000,
    "${" * 2000,
    "'" + " " * 3999,
    ";" + " " * 3999,
    "<" + " " * 3999,
    "<%" * 2000,
    "{%" * 2000,
    "$(" * 2000,
    "' or" + " " * 3996,
    "union" + " " * 3995,
    "javascript" + " " * 3990,
    "data:" + "a" * 3995,
]


def test_control_characters_remove_keeps_newline_and_tab():
    raw = "a\x00b\x01c\x08d\x0be\x0cf\x1fg\x7fh\x85i\x9fj\nk\tl"

    assert control_characters_remove(raw) == "abcdefghij\nk\tl"


def test_control_characters_remove_drops_lone_surrogates():
    assert control_characters_remove("a\ud800b\udfffc") == "abc"


def test_control_characters_remove_keeps_ordinary_unicode():
    text = "café \u2013 日本語 😀 \u200b"

    assert control_characters_remove(text) == text


def test_html_strip_removes_tags_and_keeps_text():
    assert html_strip("<b>bold</b> and <i>italic</i> <a href='x'>link</a>") == "bold and italic link"


def test_html_strip_keeps_comparison_and_ampersand_as_typed():
    assert html_strip("3 < 5 & 4 > 2") == "3 < 5 & 4 > 2"


def test_html_strip_keeps_literal_entity_text():
    assert html_strip("write &lt; for <") == "write &lt; for <"
    assert html_strip("&amp; &#60; &quot;") == "&amp; &#60; &quot;"


def test_html_strip_removes_event_handler_image_entirely():
    assert html_strip("<img src=x onerror=alert(1)>") == ""


def test_html_strip_drops_script_content():
    assert html_strip("<script>alert('xss')</script>hello") == "hello"


def test_dangerous_patterns_cover_every_article_category():
    assert set(DANGEROUS_PATTERNS) == {"xss", "sql", "command", "path_traversal", "template", "nosql", "ldap"}
    assert {category for category, _, _ in CATEGORY_EXAMPLES} == set(DANGEROUS_PATTERNS)


@pytest.mark.parametrize(("category", "attack", "benign"), CATEGORY_EXAMPLES)
def test_is_dangerous_matches_category_attack_and_spares_benign(category, attack, benign):
    own_patterns = [re.compile(pattern, re.IGNORECASE) for pattern in DANGEROUS_PATTERNS[category]]

    assert any(pattern.search(attack) for pattern in own_patterns), f"{category} missed {attack!r}"
    assert is_dangerous(attack)
    assert not is_dangerous(benign)


@pytest.mark.parametrize("text", ORDINARY_PROSE)
def test_is_dangerous_spares_ordinary_prose(text):
    assert not is_dangerous(text)


@pytest.mark.parametrize("attack", ["JAVASCRIPT:alert(1)", "<ScRiPt>", "UnIoN SeLeCt password"])
def test_is_dangerous_ignores_case(attack):
    assert is_dangerous(attack)


@pytest.mark.parametrize("text", ADVERSARIAL_INPUTS, ids=lambda text: repr(text[:12]))
def test_is_dangerous_is_fast_on_adversarial_input(text):
    assert len(text) <= settings.MAX_MESSAGE_LENGTH
    started = time.perf_counter()

    is_dangerous(text)

    assert time.perf_counter() - started < 0.5


TAG_NAMES = st.from_regex(r"\A[a-z][a-z0-9]{0,7}\Z")
PLAIN_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="<&"),
    max_size=200,
)


@given(tag=TAG_NAMES, text=PLAIN_TEXT)
def test_html_strip_leaves_no_tag_property(tag, text):
    stripped = html_strip(f"<{tag} class='c' title=\"t\">{text}</{tag}>")

    assert f"<{tag}" not in stripped
    assert re.search(r"<[a-zA-Z]", stripped) is None


@given(text=PLAIN_TEXT)
def test_html_strip_keeps_plain_text_property(text):
    assert html_strip(text) == text
