"""The privacy filter every log handler passes through: no email, token or query string in any line."""

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import RequestFactory

from chatapi.logformat import EMAIL_REDACTED, LOG_FORMATTERS, TOKEN_REDACTED, PrivateDataFilter

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "Jane.Doe+chat@mail.example.co.uk"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoidmlzaXRvciIsImp0aSI6ImFiYyJ9"
    ".hQ2nLrlOkbAwxlXjaP5FLaKNwzY562zSp0SM7zqs-BM"
)
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
API_KEY = "sk-proj-abcdefghijklmnop0123456789"
GOOGLE_KEY = "AIzaSyAbcdefghijklmnopqrstuvwxyz0123456"


def record_of(msg: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    record = logging.LogRecord("test", logging.WARNING, __file__, 1, msg, args or None, exc_info)
    record.__dict__.update(extra)
    return record


def line_of(record: logging.LogRecord, *, secrets=(), formatter: str = "json") -> str:
    """The record as the console handler writes it, through the filter and the given format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PrivateDataFilter(secrets))
    config = LOG_FORMATTERS[formatter]
    if formatter == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(config["fmt"], rename_fields=config["rename_fields"]))
    else:
        handler.setFormatter(logging.Formatter(config["format"]))
    record.__dict__.setdefault("request_id", "-")
    handler.handle(record)
    return stream.getvalue()


@pytest.mark.parametrize("formatter", ["json", "text"])
@pytest.mark.parametrize(
    ("private", "replacement"),
    [
        (EMAIL, EMAIL_REDACTED),
        (EMAIL.replace("@", "%40"), EMAIL_REDACTED),
        (EMAIL.replace("@", "%2540"), EMAIL_REDACTED),
        (JWT, TOKEN_REDACTED),
        (f"Bearer {JWT[:20]}", TOKEN_REDACTED),
        (f"bearer not-even-a-jwt-{API_KEY[3:]}", TOKEN_REDACTED),
        (DISCORD_TOKEN, TOKEN_REDACTED),
        (API_KEY, TOKEN_REDACTED),
        (GOOGLE_KEY, TOKEN_REDACTED),
    ],
    ids=[
        "email",
        "encoded-email",
        "twice-encoded-email",
        "jwt",
        "bearer-jwt",
        "bearer-other",
        "discord",
        "openai-key",
        "google-key",
    ],
)
def test_filter_redacts_private_values_in_message_args_and_extras(private, replacement, formatter):
    record = record_of("Unauthorized: /api/v1/x/%s", private, detail=f"sent {private}", items={"k": [private]})

    line = line_of(record, formatter=formatter)

    assert private not in line
    assert private.split("@")[0].split(" ")[-1] not in line
    assert replacement in line
    assert "Unauthorized: /api/v1/x/" in line


@pytest.mark.parametrize(
    "pair",
    ["password=hunter2-secret", '"api_key": "abc123def456"', "refresh_token=abcdefgh", "Authorization: Bearer abc.def"],
)
def test_filter_keeps_the_key_of_a_secret_pair_and_drops_its_value(pair):
    key, value = pair.split(pair[pair.find(":") if ":" in pair else pair.find("=")], 1)

    line = line_of(record_of("sent %s", pair))

    assert key.strip('"') in line
    assert value.strip(' "').split(" ")[-1] not in line


def test_filter_drops_query_strings_from_the_message_and_the_request_object():
    request = RequestFactory().get("/api/v1/staff/sessions", {"email": EMAIL, "page": "2"})
    record = record_of("Unauthorized: %s", request.get_full_path(), request=request, status_code=401)

    line = json.loads(line_of(record))

    assert line["message"] == "Unauthorized: /api/v1/staff/sessions"
    assert line["request"] == "<WSGIRequest: GET '/api/v1/staff/sessions'>"
    assert line["status_code"] == 401  # numbers stay numbers


def test_filter_drops_a_query_string_after_a_path_that_held_an_address():
    line = json.loads(line_of(record_of("Not Found: %s", f"/nowhere/{EMAIL}?q=plain&next=%2Fa%3Fb%3D1")))

    assert line["message"] == "Not Found: /nowhere/[email]"


def test_filter_redacts_exception_text_and_stack():
    try:
        raise ValueError(f"duplicate key (email)=({EMAIL}) for /x?token={JWT}")
    except ValueError:
        record = record_of("insert failed", exc_info=sys.exc_info(), stack_info=f"stack near {EMAIL}")

    line = json.loads(line_of(record))

    assert "ValueError: duplicate key (email)=([email]) for /x" in line["exc_info"]
    assert EMAIL not in json.dumps(line) and JWT not in json.dumps(line)
    assert line["stack_info"] == "stack near [email]"


def test_filter_removes_known_secret_values_wherever_they_appear():
    secret = "Zq1-very-own-provider-key-7"

    line = line_of(record_of("provider said: bad key %s", f"<{secret}>"), secrets=[secret, "", None, "short"])

    assert secret not in line
    assert "provider said: bad key <[token]>" in line


@pytest.mark.parametrize(
    "ordinary",
    [
        "chat session started",
        '127.0.0.1 "GET /api/v1/chat/history HTTP/1.1" 200 58 6ms',
        "preloaded 128 modules of the first model call",
        "model call failed: AuthenticationError",
        "not preloaded: litellm.litellm_core_utils.default_encoding",
        "Is the database up? It answered in 3 ms",
        "Booting worker with pid: 13371",
        "queued task-0123456789abcdefghij and desk_0123456789abcdefghij",  # "sk-", "sk_" inside a word
    ],
)
def test_filter_leaves_ordinary_lines_alone(ordinary):
    record = record_of("%s", ordinary, session_id="1fLkHb7mcHWQS4FR7T98SCMqHn0S7Pgk")

    line = json.loads(line_of(record))

    assert line["message"] == ordinary
    assert line["session_id"] == "1fLkHb7mcHWQS4FR7T98SCMqHn0S7Pgk"


def test_filter_formats_a_message_whose_args_do_not_fit_without_leaking_them():
    line = json.loads(line_of(record_of("one placeholder %s %s", EMAIL)))

    assert line["message"] == "one placeholder %s %s"


@pytest.mark.parametrize(
    "text",
    ["a" * 200_000 + "@", "eyJ" * 70_000, "b." * 100_000 + "@", "M" * 200_000, "sk-" * 70_000],
    ids=["address-run", "jwt-starts", "dotted-run", "discord-starts", "key-starts"],
)
def test_filter_is_linear_on_long_runs_that_almost_match(text):
    """A naive pattern retries a run of word characters from every position in it: quadratic."""
    redactor = PrivateDataFilter()

    started = time.perf_counter()
    redactor.redact(text + " " + text)

    assert time.perf_counter() - started < 1.0  # about 0.05 s; quadratic takes minutes


def test_filter_is_cheap_on_an_access_line():
    redactor = PrivateDataFilter(["a-secret-key-that-is-long-enough"])
    records = [
        record_of('%(h)s "%(m)s %(U)s %(H)s" %(s)s', {"h": "127.0.0.1", "m": "GET", "U": "/health", "H": "HTTP/1.1",
                                                      "s": "200"}, request_id="37244fab9bf147eca5b7cd4731c7c527")
        for _ in range(5000)
    ]  # fmt: skip

    started = time.perf_counter()
    for record in records:
        redactor.filter(record)
    per_line = (time.perf_counter() - started) / len(records)

    assert records[0].msg == '127.0.0.1 "GET /health HTTP/1.1" 200'
    assert per_line < 100e-6  # measured 6 to 8 µs; encoding the line as JSON costs about 10


# A fresh process, as the server is: the app's settings, its URLconf, then the model and Discord clients
# loaded, each of which may bring handlers of its own.
EVERY_HANDLER_PROBE = """
import json, logging, django
django.setup()
import chatapi.urls
from chat_app.llm import litellm_client
from notifications_app.discord import text_escape
litellm_client()
text_escape("loads discord.py")
loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
print(json.dumps([
    {"logger": logger.name, "handler": type(handler).__name__,
     "filters": [type(f).__name__ for f in handler.filters]}
    for logger in loggers for handler in logger.handlers if not isinstance(handler, logging.NullHandler)
]))
"""


@pytest.mark.parametrize("debug", ["False", "True"])
def test_every_log_handler_of_the_app_passes_through_the_filter(debug):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatapi.settings", "PYTHONPATH": str(ROOT), "DEBUG": debug}

    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", EVERY_HANDLER_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    handlers = json.loads(done.stdout.strip().splitlines()[-1])

    assert handlers  # the root's console handler at least
    assert [h for h in handlers if h["filters"][-1:] != ["PrivateDataFilter"]] == []
