"""Embeds staff see: masked emails, text shown as typed, everything within Discord's limits."""

from datetime import UTC, datetime

import pytest

from notifications_app import formatting
from notifications_app.formatting import (
    ASSISTANT_COLOUR,
    DESCRIPTION_LIMIT,
    ELLIPSIS,
    EMBED_TOTAL_LIMIT,
    FIELD_VALUE_LIMIT,
    FLAGGED_COLOUR,
    THREAD_NAME_LIMIT,
    TITLE_LIMIT,
    VISITOR_COLOUR,
    email_mask,
    embed_fit,
    embed_length,
    message_embed,
    session_embed,
    text_truncate,
    thread_name,
)
from notifications_app.tests.test_text_escape import discord_reading

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def visitor_embed(content: str, **overrides) -> dict:
    values = {"message_id": 7, "is_visitor": True, "content": content, "flagged": False, "fallback": False}
    return message_embed(**{**values, **overrides, "created_at": WHEN})


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("visitor@example.com", "v***@e***.com"),
        ("a@b.co", "a***@b***.co"),
        ("first.last@mail.example.org", "f***@m***.org"),
        ("x@localhost", "x***@l***"),
    ],
)
def test_email_mask_keeps_first_letters_and_tld(email, masked):
    assert email_mask(email) == masked


def test_email_mask_never_shows_the_address():
    masked = email_mask("jane.doe@company.com")

    assert "jane" not in masked and "company" not in masked


def test_session_embed_names_session_masked_email_ip_and_start():
    embed = session_embed(session_id="abc123", email="visitor@example.com", ip_address="203.0.113.7", started_at=WHEN)

    values = {field["name"]: field["value"] for field in embed["fields"]}
    assert values["Session"] == "`abc123`"
    assert discord_reading(values["Email"]) == ("v***@e***.com", [])  # escaped, or Discord would render bold
    assert discord_reading(values["IP"]) == ("203.0.113.7", [])
    assert values["Started"] == f"<t:{int(WHEN.timestamp())}:F>"
    assert embed["timestamp"] == WHEN.isoformat()
    assert "visitor@example.com" not in str(embed)


def test_thread_name_is_short_and_masked():
    name = thread_name(session_id="abcdefghijklmnop", email="visitor@example.com")

    assert name == "Chat abcdefgh · v***@e***.com"
    assert len(thread_name(session_id="s", email="a" * 300 + "@example.com")) <= THREAD_NAME_LIMIT


def test_message_embed_colours_visitor_and_assistant_apart():
    visitor = visitor_embed("hello")
    assistant = visitor_embed("hi", is_visitor=False)

    assert (visitor["title"], visitor["color"]) == ("Visitor", VISITOR_COLOUR)
    assert (assistant["title"], assistant["color"]) == ("Assistant", ASSISTANT_COLOUR)
    assert visitor["footer"] == {"text": "message 7"}


def test_message_embed_marks_flagged_message():
    embed = visitor_embed("'; DROP TABLE users; --", flagged=True)

    assert "flagged" in embed["title"]
    assert embed["color"] == FLAGGED_COLOUR


def test_message_embed_marks_fallback_reply():
    assert "fallback" in visitor_embed("sorry", is_visitor=False, fallback=True)["title"]


def test_message_embed_escapes_markdown_and_mentions():
    text = "**bold** _it_ `code` > quote @everyone @here <@123456789012345678> <@&876543210987654321>"

    description = visitor_embed(text)["description"]

    assert r"\*\*bold\*\*" in description
    assert r"\_it\_" in description
    assert r"\`code\`" in description
    assert discord_reading(description) == (text, [])


def test_message_embed_keeps_plain_text_as_typed():
    assert discord_reading(visitor_embed("3 < 5 & 4 > 2")["description"]) == ("3 < 5 & 4 > 2", [])


def test_message_embed_truncates_long_text_with_ellipsis():
    embed = visitor_embed("a" * 10_000)

    assert len(embed["description"]) == DESCRIPTION_LIMIT
    assert embed["description"].endswith(ELLIPSIS)


def test_message_embed_truncates_after_escaping():
    embed = visitor_embed("*" * 4000)  # 8,000 characters once escaped

    assert len(embed["description"]) == DESCRIPTION_LIMIT
    assert embed_length(embed) <= EMBED_TOTAL_LIMIT


def test_message_embed_shows_placeholder_for_empty_text():
    assert visitor_embed("")["description"] == formatting.EMPTY_TEXT


def test_text_truncate_leaves_short_text_alone():
    assert text_truncate("short", 10) == "short"
    assert text_truncate("exactly10!", 10) == "exactly10!"
    assert text_truncate("eleven-long", 10) == "eleven-lo" + ELLIPSIS


def test_embed_fit_cuts_title_fields_and_total():
    embed = {
        "title": "t" * 300,
        "description": "d" * 4096,
        "fields": [{"name": "n", "value": "v" * 2000}, {"name": "m", "value": "w" * 2000}],
        "footer": {"text": "f" * 100},
    }

    fitted = embed_fit(embed)

    assert len(fitted["title"]) == TITLE_LIMIT
    assert all(len(field["value"]) == FIELD_VALUE_LIMIT for field in fitted["fields"])
    assert embed_length(fitted) == EMBED_TOTAL_LIMIT
    assert fitted["description"].endswith(ELLIPSIS)
