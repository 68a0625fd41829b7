"""The demo page at `/` and the widget's static files: no inline code, so a strict CSP allows them."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders

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


def test_widget_static_files_exist():
    for name in ("chat_app/widget.js", "chat_app/widget.css", "chat_app/demo.css"):
        assert finders.find(name), name


def test_widget_script_never_writes_html():
    script = Path(finders.find("chat_app/widget.js")).read_text(encoding="utf-8")

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
