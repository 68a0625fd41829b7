"""Visitor text: control characters, dangerous-pattern detection, and optional HTML stripping to plain text."""

import html
import re

import nh3

# C0/C1 controls and DEL except tab and newline, and lone surrogates (no database can store them).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

# The article's categories. Every repetition is bounded, so matching is linear in the input.
DANGEROUS_PATTERNS: dict[str, tuple[str, ...]] = {
    "xss": (
        r"javascript\s{0,10}:",
        r"vbscript\s{0,10}:",
        r"data:[a-z]{1,20}/[a-z0-9.+-]{1,50}[;,]",
        r"<\s{0,10}script",
        r"\bon(?:error|load|click|mouseover|focus)\s{0,10}=",
        r"<\s{0,10}(?:iframe|object|embed|svg)\b",
    ),
    "sql": (
        r";\s{0,20}drop\s{1,20}(?:table|database)",
        r"'\s{0,20}or\s{0,20}'",
        r"'\s{0,20}or\s{1,20}\d{1,10}\s{0,5}=\s{0,5}\d",
        r"union\s{1,20}(?:all\s{1,20})?select",
        r";\s{0,20}(?:delete\s{1,20}from|insert\s{1,20}into|update\s{1,20}\w{1,64}\s{1,20}set)\b",
    ),
    "command": (
        r";\s{0,20}(?:cat|rm|wget|curl|nc|bash|sh)\s",
        r"\|\s{0,20}(?:whoami|sh|bash|nc)\b",
        r"&&\s{0,20}(?:rm|cat|wget|curl)\s",
        r"\$\((?:[^)]{0,200})\)",
    ),
    "path_traversal": (r"\.\./", r"\.\.\\", r"%2e%2e(?:%2f|%5c|/)", r"%252e%252e%252f"),
    "template": (r"\{\{[^}]{0,500}\}\}", r"\$\{[^}]{0,500}\}", r"<%=?[^%]{0,500}%>", r"\{%[^%]{0,500}%\}"),
    "nosql": (r"\$(?:gt|gte|lt|lte|ne|nin|in|where|regex|expr)\b",),
    "ldap": (r"\*\)\(", r"\)\(&", r"\)\(\|", r"\)\(cn="),
}
_DANGEROUS = re.compile(
    "|".join(f"(?:{pattern})" for patterns in DANGEROUS_PATTERNS.values() for pattern in patterns),
    re.IGNORECASE,
)


def control_characters_remove(text: str) -> str:
    return CONTROL_CHARACTERS.sub("", text)


def is_dangerous(text: str) -> bool:
    """True when the text matches any injection pattern; a flag for staff, not the defence itself."""
    return _DANGEROUS.search(text) is not None


def html_strip_once(text: str) -> str:
    """One pass of nh3: markup removed, everything else kept exactly as typed.

    nh3 returns HTML, so '&' is escaped first and the result unescaped: '3 < 5 & a' stays as is
    and a literal '&lt;' typed by the visitor is not turned into '<'.
    """
    return html.unescape(nh3.clean(text.replace("&", "&amp;"), tags=set(), attributes={}, strip_comments=True))


# What one nh3 pass can leave as text and a second pass would read as markup: a run of '<' then a
# letter, '!', '/' or '?' (a tag, comment or declaration), up to its '>' or the next '<'. It comes
# from a '<' typed before a tag (`<<b>script>` leaves `<script>`) or from an element whose content
# HTML reads as text (`<xmp><b>x</b></xmp>` leaves `<b>x</b>`). The group is optional, so every run
# of '<' is matched whole and never scanned twice: linear, even for '<' * n.
_LEFTOVER_MARKUP = re.compile(r"<+([A-Za-z!/?][^<>]*>?)?")


def html_leftovers_remove(text: str) -> str:
    """Remove what one nh3 pass left as text that reads as markup; other '<' stay as typed."""
    return _LEFTOVER_MARKUP.sub(lambda run: "" if run[1] else run[0], text)


def html_strip(text: str) -> str:
    """All markup removed, everything else kept as typed (plain text, not HTML), in time linear in the length.

    One nh3 pass, then its markup-shaped leftovers removed, so that no further pass would change the
    result; never a loop until nothing changes, whose passes each peeled one level of `<<<b>b>b>`
    (0.9 s of CPU for 4,000 characters).
    """
    return html_leftovers_remove(html_strip_once(text))
