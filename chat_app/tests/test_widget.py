"""The demo page at `/` and the widget's static files: no inline code, so a strict CSP allows them."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

from conftest import body_of

pytestmark = pytest.mark.django_db


def test_widget_demo_page_embeds_the_widget(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert re.search(r'<script src="[^"]*chat_app/widget\.js" data-target="#chat" defer></script>', html)
    assert '<div id="chat"' in html


def test_widget_demo_page_has_no_inline_script_or_style(client):
    html = client.get("/").content.decode()

    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"<[^>]+\son\w+\s*=", html)  # no event-handler attributes


def widget_parts() -> list[str]:
    """The parts widget.js loads beside itself, in its order (its PARTS list)."""
    script = Path(finders.find("chat_app/widget.js")).read_text(encoding="utf-8")
    listed = re.search(r"var PARTS = \[([^\]]*)\];", script)
    assert listed, "widget.js lists its parts in PARTS"
    return re.findall(r'"([^"]+)"', listed[1])


def test_widget_static_files_exist():
    for name in ("chat_app/widget.js", "chat_app/widget.css", "chat_app/demo.css"):
        assert finders.find(name), name


def test_widget_loads_every_part_file_and_each_is_served_as_javascript(client):
    parts = widget_parts()
    folder = Path(finders.find("chat_app/widget.js")).parent

    assert sorted(parts) == sorted(path.name for path in folder.glob("widget-*.js"))  # none missing, none left out
    for name in parts:
        response = client.get(f"/static/chat_app/{name}")
        assert response.status_code == 200, name
        assert response["Content-Type"].startswith("text/javascript"), name
        assert body_of(response), name  # read to the end, which closes the file


def test_widget_scripts_each_stay_under_400_lines():
    for name in ["widget.js", *widget_parts()]:
        lines = Path(finders.find(f"chat_app/{name}")).read_text(encoding="utf-8").splitlines()
        assert len(lines) < 400, (name, len(lines))


def test_widget_script_never_writes_html():
    for name in ["widget.js", *widget_parts()]:
        script = Path(finders.find(f"chat_app/{name}")).read_text(encoding="utf-8")

        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in script, (name, sink)


def test_widget_loads_its_events_line_and_handoff_parts(client):
    parts = widget_parts()

    assert {"widget-events.js", "widget-handoff.js"} <= set(parts)
    events = body_of(client.get("/static/chat_app/widget-events.js")).decode()
    assert "/chat/events" in events and "text/event-stream" in events  # a stream first, long poll after


def test_widget_reads_events_with_its_token_never_with_event_source():
    # EventSource cannot send `Authorization`: the events are read with fetch, the token in the header.
    for name in ["widget.js", *widget_parts()]:
        script = Path(finders.find(f"chat_app/{name}")).read_text(encoding="utf-8")

        assert "EventSource(" not in script, name
        assert not re.search(r"[?&](access_)?token=", script), name  # never in a URL, which logs keep


def test_widget_demo_page_tells_the_operator_how_to_configure_a_model(client, no_model):
    html = client.get("/").content.decode()

    banner = re.search(r'<section class="no-model" role="note">(.*?)</section>', html, re.DOTALL)
    assert banner, html
    for what in ("LLM_MODEL", "LLM_API_KEY", "LLM_API_BASE", "Using a real model", "fallback"):
        assert what in banner[1]


def test_widget_demo_page_shows_no_banner_once_a_model_is_configured(client, settings):
    settings.LLM_API_BASE = "http://127.0.0.1:9/v1"

    html = client.get("/").content.decode()

    assert "no-model" not in html and "LLM_API_KEY" not in html


def test_chat_without_a_model_still_answers_the_fallback(visitor_client, no_model):
    from chat_app.services import FALLBACK_REPLY

    response = visitor_client.post("/api/v1/chat", {"message": "Hello?"}, format="json")

    assert response.status_code == 200
    assert (response.json()["response"], response.json()["fallback"]) == (FALLBACK_REPLY, True)
