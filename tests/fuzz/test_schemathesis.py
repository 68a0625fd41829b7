"""Schemathesis against the live server's own OpenAPI schema: every operation, as a visitor and as staff.

Each operation gets valid and invalid requests generated from the schema; every response must be no
5xx, carry a documented status, content type and headers, and match the documented body schema.
FUZZ_MAX_EXAMPLES (default 25) bounds the cases per operation, role and mode, so CI stays near a minute.
"""

import json
import os
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from chat_app.models import ChatMessage
from sessions_app.services import chat_session_start

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
FUZZ_UA = "Mozilla/5.0 (X11; Linux x86_64) schemathesis"
# A schema-valid message can still be refused by rules JSON Schema cannot state (blank once control
# characters are removed and it is trimmed), so "valid data must be accepted" does not hold for /chat.
EXCLUDED_CHECKS = [positive_data_acceptance]
SSE_EVENTS = {"delta", "done", "error"}


@dataclass
class Tally:
    cases: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    no_invalid_input: list[str] = field(default_factory=list)


@pytest.fixture
def api_schema(live_server):
    # Unknown query parameters are ignored, as HTTP APIs do; only invalid known ones must be refused.
    # The Authorization header is ours to set (a fresh token per case), never generated or dropped.
    generation = {"allow-extra-parameters": False, "with-security-parameters": False}
    # Read whole streams: a reply has up to ~20 deltas, past schemathesis's default cut-off.
    config = schemathesis.Config.from_dict({"generation": generation, "max-stream-events": 1000})
    url = f"{live_server.url}/api/v1/schema?format=json"
    return schemathesis.openapi.from_url(url, config=config, timeout=60)  # the first request loads the URLconf


@pytest.fixture
def known_session():
    """A session with an exchange and a flagged message, so staff paths with its id answer 200."""
    started = chat_session_start(email="known@example.com", user_agent=FUZZ_UA, ip_address="192.0.2.10")
    message = ChatMessage.objects.create(session=started.session, kind="user", content="hello")
    ChatMessage.objects.create(session=started.session, kind="assistant", content="hi", in_reply_to=message)
    ChatMessage.objects.create(session=started.session, kind="user", content="<script>", flagged=True)
    return started.session


def sse_check(response) -> None:
    """The stream's own shape: named events with JSON data, closed by exactly one done or error."""
    events = [block for block in response.content.decode("utf-8").split("\n\n") if block.strip()]
    names = []
    for block in events:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))  # only \n ends an SSE line here
        assert fields["event"] in SSE_EVENTS, block
        json.loads(fields["data"])
        names.append(fields["event"])
    assert names and names[-1] in {"done", "error"} and names.count("done") + names.count("error") == 1, names


def long_poll_shortened(case) -> None:
    """A valid `wait` (a long poll's hold, up to 30 s) becomes 1 s: the answer's shape is the same,
    and hundreds of fuzzed cases would otherwise wait minutes on an idle conversation."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, bool) or wait is None:
        return
    if (isinstance(wait, int) or (isinstance(wait, str) and wait.isdigit())) and 1 < int(wait) <= 30:
        case.query["wait"] = 1


def only_query_is_invalid(case) -> bool:
    meta = case.meta
    if meta is None:
        return False
    negative = {location for location in meta.components if meta.is_negative_at(location)}
    return negative == {ParameterLocation.QUERY}


def fuzz_operation(operation, *, base_url: str, authorization, strategy_kwargs: dict, tally: Tally) -> None:
    for mode in MODES:
        strategies = [operation.as_strategy(generation_mode=mode)]
        if strategy_kwargs.get("path_parameters") and "{id}" in operation.path:
            strategies.append(operation.as_strategy(generation_mode=mode, **strategy_kwargs))

        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(case=st.one_of(strategies))
        def run(case):
            tally.cases[operation.label] += 1
            headers = {"Authorization": authorization(), "User-Agent": FUZZ_UA}
            long_poll_shortened(case)
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            excluded = list(EXCLUDED_CHECKS)
            if only_query_is_invalid(case):
                # Query values are read leniently, as DRF pagination and django-filter do: an empty
                # or unparseable optional value means "not given" (the staff filters; SECURITY.md).
                excluded.append(negative_data_rejection)
            if response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
                sse_check(response)  # the order of events; schemathesis checks each one's shape
            case.validate_response(response, excluded_checks=excluded, headers=headers)

        try:
            run()
        except Unsatisfiable:
            tally.no_invalid_input.append(f"{operation.label} ({mode.value})")
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; all failures are reported together
            tally.failures.append(f"{operation.label} ({mode.value}): {str(exc)[:2000]}")


def fuzz_schema(api_schema, *, base_url: str, authorization, strategy_kwargs: dict) -> tuple[list, Tally]:
    tally = Tally()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(
            operation, base_url=base_url, authorization=authorization, strategy_kwargs=strategy_kwargs, tally=tally
        )
    print(
        f"\nfuzz: {len(operations)} operations, {sum(tally.cases.values())} cases, {len(tally.failures)} failures "
        f"(no invalid input possible: {', '.join(tally.no_invalid_input) or 'none'})"
    )
    return operations, tally


@pytest.fixture
def fuzz_settings(settings, model_server):
    settings.RATE_LIMITING_ENABLED = False  # limits are tested on their own; here they would hide paths
    return settings


def test_fuzz_every_operation_as_visitor(live_server, api_schema, fuzz_settings, known_session):
    def fresh_visitor_token() -> str:
        # Each case may log out or erase its session, so each gets its own.
        started = chat_session_start(email="fuzz@example.com", user_agent=FUZZ_UA, ip_address="127.0.0.1")
        return f"Bearer {started.access_token}"

    operations, tally = fuzz_schema(
        api_schema, base_url=live_server.url, authorization=fresh_visitor_token,
        strategy_kwargs={"path_parameters": {"id": known_session.pk}},
    )  # fmt: skip

    assert len(operations) >= 14
    assert set(tally.cases) == {operation.label for operation in operations}
    assert tally.failures == []


def test_fuzz_every_operation_as_staff(live_server, api_schema, fuzz_settings, known_session, staff_user):
    token = f"Bearer {RefreshToken.for_user(staff_user).access_token}"

    operations, tally = fuzz_schema(
        api_schema, base_url=live_server.url, authorization=lambda: token,
        strategy_kwargs={"path_parameters": {"id": known_session.pk}},
    )  # fmt: skip

    assert len(operations) >= 14
    assert set(tally.cases) == {operation.label for operation in operations}
    assert tally.failures == []
