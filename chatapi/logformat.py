"""Log line formats and the privacy filter, shared by the app (settings.LOGGING) and gunicorn (gunicorn.conf.py).

Plain dictConfig data and a logging.Filter with no Django import, so gunicorn's master can read it before the app loads.
"""

import logging
import re
from collections.abc import Iterable

LOG_FORMATTERS = {
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
    "text": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"},
}

# Settings whose values never appear in a line, wherever a library might echo them.
SECRET_SETTINGS = ("SECRET_KEY", "JWT_SECRET_KEY", "HASH_KEY", "LLM_API_KEY", "DISCORD_BOT_TOKEN")
EMAIL_REDACTED = "[email]"
TOKEN_REDACTED = "[token]"  # noqa: S105 - a placeholder, not a password  # nosec B105

# Each pattern runs only when a cheap substring test says it might match: a line costs a few
# substring tests, not a scan per pattern (under 10 µs for an access line, less than its JSON encoding).
# A JWT (visitor and staff access and refresh tokens) is base64url JSON, so it starts with eyJ; a
# Discord bot token is the bot's id in base64, a timestamp and an HMAC; provider API keys are
# OpenAI's and Anthropic's, Google's, Groq's, GitHub's and Slack's.
# The lookbehind after "eyJ" (a word's start only) keeps a run of "eyJeyJ..." linear: the scan for its
# dot is tried once per run, not once per "eyJ", and the literal still leads the search.
_TOKEN = re.compile(
    r"eyJ(?<![\w-]eyJ)[\w-]*\.[\w-]*(?:\.[\w-]*)?"
    r"|[MNO][\w-]{23,27}\.[\w-]{6,7}\.[\w-]{27,}"
    r"|(?:sk[-_]|AIza|gsk_|gh[pousr]_|xox[abprs]-)[\w-]{16,}"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
# A secret handed over as key=value or "key": "value": the key stays, the value goes.
_PAIR = re.compile(
    r"(?i)(\b(?:api[_-]?key|access[_-]?token|refresh[_-]?token|token|password|secret|authorization)[\"']?\s*[:=]\s*"
    r"[\"']?)(?:bearer\s+)?[^\s\"',;&}]+"
)
_PAIR_KEYS = ("key", "token", "password", "secret", "authorization", "bearer")
# An address, plain or percent-encoded (once or twice). Tried only where a run of address characters starts, so a
# long run without "@" costs one pass, not one per character.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+(?:@|%40|%2540)[\w-]+(?:\.[\w-]+)*")
# A query string: from a "?" that follows a path to the end of the URL. Dropped whole.
_QUERY = re.compile(r"(?<=[\w/%.~-])\?[^\s\"'<>]+")
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_exception_formatter = logging.Formatter()


def _token_redacted(match: re.Match) -> str:
    start = match.start()
    if start and (match.string[start - 1].isalnum() or match.string[start - 1] in "_-"):
        return match[0]  # the middle of a longer word, not a token of its own
    return TOKEN_REDACTED


class PrivateDataFilter(logging.Filter):
    """Every handler's last filter: no email address, token or query string leaves in a line.

    Rewrites the record in place: its message (formatted with its args, which are then dropped), every
    extra field (`request`, `session_id`, ...), and the exception and stack text. `secrets` are values
    known to be secret (the settings named in SECRET_SETTINGS), removed wherever they appear.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        known = sorted({value for value in secrets if value and len(value) >= 8}, key=len, reverse=True)
        self._known = re.compile("|".join(map(re.escape, known))) if known else None

    def redact(self, text: str) -> str:
        if "?" in text:  # first: whatever a query string holds goes with it
            text = _QUERY.sub("", text)
        if self._known is not None:
            text = self._known.sub(TOKEN_REDACTED, text)
        lowered = text.lower()
        if any(key in lowered for key in _PAIR_KEYS):
            text = _BEARER.sub(TOKEN_REDACTED, _PAIR.sub(lambda match: match[1] + TOKEN_REDACTED, text))
        text = _TOKEN.sub(_token_redacted, text)
        if "@" in text or "%40" in text or "%2540" in text:
            text = _EMAIL.sub(EMAIL_REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - arguments that do not fit the format: keep the format alone
            message = str(record.msg)
        record.msg, record.args = self.redact(message), ()
        for name in record.__dict__.keys() - _STANDARD_ATTRIBUTES:
            record.__dict__[name] = self._value_redacted(record.__dict__[name])
        if record.exc_info:
            # Formatters would format the live exception again; they all fall back to exc_text.
            record.exc_text, record.exc_info = _exception_formatter.formatException(record.exc_info), None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _value_redacted(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {
                self.redact(key) if isinstance(key, str) else key: self._value_redacted(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._value_redacted(item) for item in value]
        return self.redact(str(value))  # an object (a request, a socket): its text, as a formatter writes it
