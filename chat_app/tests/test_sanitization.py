"""Visitor text: control characters, HTML stripping to plain text, and bounded dangerous patterns."""

import re
import time

import nh3
import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from chat_app.sanitization import (
    DANGEROUS_PATTERNS,
    control_characters_remove,
    html_strip,
    html_strip_once,
    is_dangerous,
)

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


@pytest.mark.parametrize(
    ("markup", "stripped"),
    [("<<b>script>alert(1)<</b>/script>", "alert(1)"), ("x <<b>y</b>", "x "), ("<<<b>!-- z --> w", " w"),
     ("a <<b>/b> c", "a  c"), ("1 <<b> 2 <<b>> 3", "1 < 2 <> 3"), ("<xmp><b>x</b></xmp>", "x"),
     ("<iframe><b onclick=alert(1)>x</b></iframe>", "x"), ("<svg><![CDATA[<i>z</i>]]></svg>", "z"),
     ("<textarea><b>x</b> y</textarea>", "x y"), ("<" * 50 + " <" + "<<b>" * 5, "<" * 50 + " " + "<" * 6)],
)  # fmt: skip
def test_html_strip_removes_markup_one_pass_leaves_as_text(markup, stripped):
    assert html_strip(markup) == stripped
    assert html_strip_once(stripped) == stripped  # a second pass would change nothing


def cpu_seconds(work, *, rounds: int = 5) -> float:
    """The least CPU time of a few rounds of `work`: the least noisy reading a shared machine gives."""
    readings = []
    for _ in range(rounds):
        started = time.process_time()
        work()
        readings.append(time.process_time() - started)
    return min(readings)


def repeated(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def nested_tags(length: int) -> str:
    """`<<<b>b>b>`: each pass of a strip-until-nothing-changes loop peels one level."""
    return "<" * (length // 3) + "b>" * (length // 3)


# Adversarial shapes: the nesting the old loop peeled one level per pass, comments, lone and
# half-formed openers, entities, and block nesting (html5ever's own scope checks grow with depth).
ADVERSARIAL_MARKUP = {
    "nested": nested_tags,
    "comment-nested": lambda n: repeated("<", n // 5) + repeated("!-->", n - n // 5),
    "end-nested": lambda n: repeated("<", n // 5) + repeated("</b>", n - n // 5),
    "openers": lambda n: repeated("<", n),
    "ampersands": lambda n: repeated("&", n),
    "half-tags": lambda n: repeated("<a", n),
    "inline": lambda n: repeated("<b><i>x", n),
    "divs": lambda n: repeated("<div>", n),
    "lists": lambda n: repeated("<ul><li>", n),
}


@pytest.mark.parametrize("shape", ADVERSARIAL_MARKUP)
def test_html_strip_costs_one_nh3_pass(shape):
    markup = ADVERSARIAL_MARKUP[shape](settings.MAX_MESSAGE_LENGTH)
    as_html = markup.replace("&", "&amp;")  # what html_strip hands nh3: the visitor's '&' as text
    one_pass = cpu_seconds(lambda: [nh3.clean(as_html, tags=set(), attributes={}) for _ in range(3)])

    stripped = cpu_seconds(lambda: [html_strip(markup) for _ in range(3)])

    # One pass, plus unescaping its entities: up to five times one pass. The loop until nothing changes: 1,000 times.
    assert stripped < 20 * one_pass + 0.002, f"{shape}: {stripped:.4f} s against {one_pass:.4f} s for one pass"


@pytest.mark.parametrize("shape", ["nested", "comment-nested", "end-nested", "openers", "ampersands", "inline"])
def test_html_strip_time_grows_linearly_with_length(shape):
    short, long = ADVERSARIAL_MARKUP[shape](500), ADVERSARIAL_MARKUP[shape](4000)
    eight_short = cpu_seconds(lambda: [html_strip(short) for _ in range(8)])

    one_long = cpu_seconds(lambda: html_strip(long))

    # Linear: eight times the text costs about eight short runs; a quadratic loop costs eight times that.
    assert one_long < 3 * eight_short + 0.001, f"{shape}: {one_long:.4f} s against {eight_short:.4f} s"


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
