"""What staff see in Discord: embeds for a new session and for each message, within Discord's limits.

Pure functions of plain values, returning embed dicts in Discord's JSON shape. Visitor text is
shown as typed: Markdown escaped and mentions neutralised, then cut to the limits with an ellipsis.
"""

from datetime import datetime

from notifications_app.discord import text_escape

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
THREAD_NAME_LIMIT = 100
ELLIPSIS = "…"

SESSION_COLOUR = 0x5865F2
VISITOR_COLOUR = 0x3498DB
ASSISTANT_COLOUR = 0x2ECC71
STAFF_COLOUR = 0xF1C40F
FLAGGED_COLOUR = 0xE74C3C
EMPTY_TEXT = "*(empty message)*"


def text_truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and an ellipsis, `limit` long."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def email_mask(email: str) -> str:
    """`visitor@example.com` -> `v***@e***.com`: enough for staff to tell sessions apart."""
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    masked_domain = f"{host[:1]}***" + (f".{tld}" if tld else "")
    return f"{local[:1]}***@{masked_domain}"


def thread_name(*, session_id: str, email: str) -> str:
    return text_truncate(f"Chat {session_id[:8]} · {email_mask(email)}", THREAD_NAME_LIMIT)


def session_embed(*, session_id: str, email: str, ip_address: str, started_at: datetime) -> dict:
    return {
        "title": "New chat session",
        "color": SESSION_COLOUR,
        "fields": [
            _field("Session", f"`{session_id}`", inline=False),
            _field("Email", text_escape(email_mask(email))),
            _field("IP", text_escape(ip_address)),
            _field("Started", f"<t:{int(started_at.timestamp())}:F>"),
        ],
        "timestamp": started_at.isoformat(),
    }


def message_embed(
    *,
    message_id: int,
    is_visitor: bool,
    content: str,
    flagged: bool,
    fallback: bool,
    created_at: datetime,
    staff_author: str | None = None,
) -> dict:
    title = "Visitor" if is_visitor else "Assistant"
    colour = VISITOR_COLOUR if is_visitor else ASSISTANT_COLOUR
    if staff_author is not None:  # a staff reply sent from the admin or the API
        title, colour = f"Staff · {text_escape(staff_author)}", STAFF_COLOUR
    if flagged:
        title, colour = f"⚠️ {title} · flagged", FLAGGED_COLOUR
    elif fallback:
        title += " · fallback reply"
    embed = {
        "title": title,
        "description": text_truncate(text_escape(content), DESCRIPTION_LIMIT) if content else EMPTY_TEXT,
        "color": colour,
        "footer": {"text": f"message {message_id}"},
        "timestamp": created_at.isoformat(),
    }
    return embed_fit(embed)


def human_request_text(*, role_id: int) -> str:
    """The ping when a visitor asks for a person: the staff role mentioned when one is set."""
    who = f"<@&{role_id}> " if role_id else ""
    return f"{who}🙋 The visitor asks for a person. Type here to answer them; `!ai` hands them back to the model."


def embed_length(embed: dict) -> int:
    """The characters Discord counts against the 6,000 a message's embeds may hold."""
    fields = embed.get("fields") or []
    return (
        len(embed.get("title") or "")
        + len(embed.get("description") or "")
        + len((embed.get("footer") or {}).get("text") or "")
        + len((embed.get("author") or {}).get("name") or "")
        + sum(len(field["name"]) + len(field["value"]) for field in fields)
    )


def embed_fit(embed: dict) -> dict:
    """Each part cut to its own limit, then the description shortened until the whole fits."""
    fitted = {**embed}
    if "title" in fitted:
        fitted["title"] = text_truncate(fitted["title"], TITLE_LIMIT)
    if fitted.get("description"):
        fitted["description"] = text_truncate(fitted["description"], DESCRIPTION_LIMIT)
    if "fields" in fitted:
        fitted["fields"] = [_field(f["name"], f["value"], inline=f.get("inline", True)) for f in fitted["fields"]]
    excess = embed_length(fitted) - EMBED_TOTAL_LIMIT
    if excess > 0 and fitted.get("description"):
        description = fitted["description"]
        fitted["description"] = text_truncate(description, max(len(ELLIPSIS), len(description) - excess))
    return fitted


def _field(name: str, value: str, *, inline: bool = True) -> dict:
    return {
        "name": text_truncate(name, FIELD_NAME_LIMIT),
        "value": text_truncate(value, FIELD_VALUE_LIMIT),
        "inline": inline,
    }
