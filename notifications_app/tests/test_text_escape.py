"""Text in Discord is shown as typed: nothing a visitor or the model writes mentions, links or formats.

`discord_reading` is a small model of how Discord's client reads message and embed text: the rules of
simple-markdown as Discord extends them (the shapes follow simple-markdown's defaults and the
discord-markdown-parser project's Discord rules). It is wider than Discord on purpose: it looks for
every construct at every position that no escape consumed, and accepts ids of any length.
"""

import re
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifications_app.discord import text_escape
from notifications_app.formatting import DESCRIPTION_LIMIT, message_embed, session_embed

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Discord's escape: a backslash before anything but a letter, a digit or whitespace shows that character.
ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")
ID = r"\d+"
# simple-markdown's link: the text may hold newlines and balanced brackets, the target angle brackets.
LINK_TEXT = r"(?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*"
LINK_TARGET = r"\s*<?((?:\([^)]*\)|[^\s\\]|\\.)*?)>?(?:\s+['\"]([\s\S]*?)['\"])?\s*"
MENTIONS = {
    "user": rf"<@!?{ID}>",
    "role": rf"<@&{ID}>",
    "channel": rf"<#{ID}>",
    "everyone": r"@everyone",
    "here": r"@here",
    "slash command": rf"</[^>:]+:{ID}>",
    "guild navigation": rf"<{ID}:[\w-]+(?::{ID})?>",
    "custom emoji": rf"<a?:\w+:{ID}>",
    "timestamp": r"<t:-?\d+(?::\w)?>",
}
LINKS = {
    "masked link": rf"\[{LINK_TEXT}\]\({LINK_TARGET}\)",
    "angle link": r"<[^: >]+:/[^ >]+>",
    "mail link": r"<[^ >]+@[^ >]+>",
    "url": r"(?:https?|steam|discord)://[^\s<]+[^<.,:;\"')\]\s]",
}
FORMATTING = {
    "code": r"`", "bold or italics": r"\*", "underline or italics": r"_", "strikethrough": r"~~", "spoiler": r"\|\|",
}  # fmt: skip
LINE_START = {  # only where a line starts
    "heading": r"#{1,3} +\S",
    "subtext": r"-# +\S",
    "block quote": r" *>",
    "list item": r" *(?:[*+-]|\d+\.) +\S",
}
INLINE_RULES = [(name, re.compile(pattern)) for name, pattern in {**MENTIONS, **LINKS, **FORMATTING}.items()]
LINE_RULES = [(name, re.compile(pattern)) for name, pattern in LINE_START.items()]


def discord_reading(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(the text Discord shows, the constructs it renders as (rule, source)) for embed or message text."""
    shown: list[str] = []
    found: list[tuple[str, str]] = []
    position = 0
    while position < len(markdown):
        if escaped := ESCAPE.match(markdown, position):
            shown.append(escaped[1])
            position = escaped.end()
            continue
        at_line_start = position == 0 or markdown[position - 1] == "\n"
        for name, rule in INLINE_RULES + (LINE_RULES if at_line_start else []):
            if construct := rule.match(markdown, position):
                found.append((name, construct[0]))
        shown.append(markdown[position])
        position += 1
    return "".join(shown), found


# Each renders as a mention, a link or formatting when posted as typed.
DISCORD_CONSTRUCTS = [
    "[a\nb](https://x.example)",
    "[click here](https://evil.example)",
    "[text](<https://evil.example>)",
    "[a [nested] text](https://evil.example)",
    "[https://good.example](https://evil.example)",
    "[x](https://evil.example 'title')",
    "<a:/[x](https://evil.example)>",
    "<https://evil.example>",
    "<someone@example.com>",
    "https://example.com/page",
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@!123456789012345678>",
    "<@&123456789012345678>",
    "<#123456789012345678>",
    "</ask:123456789012345678>",
    "</ask sub group:123456789012345678>",
    "<123456789012345678:customize>",
    "<123456789012345678:linked-roles:876543210987654321>",
    "<:smile:123456789012345678>",
    "<a:wave:123456789012345678>",
    "<t:1700000000:R>",
    "# heading",
    "## heading",
    "-# subtext",
    "> quote",
    ">>> quote to the end",
    "  > indented quote",
    "- item",
    "* item",
    "+ item",
    "1. item",
    "```\ncode block\n```",
    "`code`",
    "**bold** *italics* __underline__ _italics_ ~~struck~~ ||spoiler||",
    "line one\n# heading on line two",
]


@pytest.mark.parametrize("text", DISCORD_CONSTRUCTS)
def test_discord_reading_finds_the_construct_in_text_posted_as_typed(text):
    assert discord_reading(text)[1] != []


@pytest.mark.parametrize("text", DISCORD_CONSTRUCTS)
def test_text_escape_leaves_no_construct_and_shows_the_text_as_typed(text):
    assert discord_reading(text_escape(text)) == (text, [])


def test_text_escape_keeps_a_typed_backslash_from_escaping_anything():
    for text in ("\\", "\\[a](https://x.example)", "\\\\@everyone", "C:\\Users\\me", "¯\\_(ツ)_/¯"):
        assert discord_reading(text_escape(text)) == (text, [])


# Pieces Discord gives a meaning to, so that generated text forms mentions, links and Markdown often.
DISCORD_PIECES = st.sampled_from([
    "[", "]", "(", ")", "<", ">", "@", "#", "&", "!", "/", ":", "\\", "\n", " ", "`", "*", "_", "~", "|", "-", "+",
    ".", "'", '"', "everyone", "here", "123456789012345678", "https://x.example", "t:1700000000", "a:", "1",
    "customize", "-# ", "# ", "> ", "- ", "1. ", "```", "a", "é", "\u200b",
])  # fmt: skip
DISCORD_TEXT = st.one_of(st.text(max_size=200), st.lists(DISCORD_PIECES, max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(text=DISCORD_TEXT)
@example("[a\nb](https://x)")
def test_text_escape_never_lets_discord_mention_link_or_format(text):
    assert discord_reading(text_escape(text)) == (text, [])


@settings(max_examples=200, deadline=None)
@given(text=DISCORD_TEXT.filter(bool), is_visitor=st.booleans())  # no text shows our own placeholder
def test_message_embed_shows_any_text_as_typed(text, is_visitor):
    embed = message_embed(message_id=1, is_visitor=is_visitor, content=text, flagged=False, fallback=False,
                          created_at=WHEN)  # fmt: skip

    shown, found = discord_reading(embed["description"])

    assert found == []
    if len(text_escape(text)) <= DESCRIPTION_LIMIT:
        assert shown == text


def test_message_embed_cut_to_the_limit_still_shows_no_construct():
    text = "[a\nb](https://x.example) @everyone <@123456789012345678> " * 200

    embed = message_embed(message_id=1, is_visitor=True, content=text, flagged=False, fallback=False, created_at=WHEN)

    shown, found = discord_reading(embed["description"])
    assert found == []
    assert text.startswith(shown.removesuffix("…")) and len(embed["description"]) == DESCRIPTION_LIMIT


def test_session_embed_fields_show_no_construct():
    embed = session_embed(session_id="s", email="_*@everyone.example", ip_address="2001:db8::1", started_at=WHEN)

    for field in embed["fields"]:
        if field["name"] in ("Email", "IP"):
            assert discord_reading(field["value"])[1] == []
