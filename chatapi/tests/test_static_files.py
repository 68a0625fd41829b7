"""Static files under the production storage: served with or without collectstatic, a missing one a 404."""

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client

from conftest import body_of
from testing.page_crawl import MISSING_STATIC_FILE, PAGES, Fetched, crawl, problems, references

pytestmark = pytest.mark.django_db


def chat_app_static_files() -> set[str]:
    """Every file of chat_app's static folder by its URL: the demo page's, the widget's parts and stylesheet."""
    folder = Path(apps.get_app_config("chat_app").path) / "static" / "chat_app"
    return {f"/static/chat_app/{path.name}" for path in folder.iterdir() if path.is_file()}


def client_fetch(client: Client):
    def fetch(path: str) -> Fetched:
        response = client.get(path)
        # Read to the end: the client closes a file's answer then (closing it here would end the request's
        # database connection too, as a finished request does).
        return Fetched(response.status_code, response.get("Content-Type", ""), body_of(response))

    return fetch


def test_the_production_storage_is_the_one_under_test(settings):
    assert settings.STORAGES["staticfiles"]["BACKEND"] == "chatapi.storage.HashedWhenCollectedStorage"


def test_without_collectstatic_every_page_and_every_file_it_loads_answers_200(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "staticfiles"  # never collected
    fetch = client_fetch(Client())

    seen = crawl(fetch)

    assert problems(seen, fetch(MISSING_STATIC_FILE)) == []
    assert static("chat_app/no-such-file.js") == "/static/chat_app/no-such-file.js"  # named, not an error
    assert set(PAGES) <= set(seen)
    static_files = [path for path in seen if path.startswith("/static/")]
    assert "/static/chat_app/widget.js" in static_files  # by its own name, from the app's static directory
    assert chat_app_static_files() <= set(static_files)  # widget.js's parts and stylesheet, as it names them
    assert any(path.startswith("/static/admin/css/") for path in static_files)
    assert any(path.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/") for path in static_files)
    assert any(path.startswith("/static/admin/img/") for path in static_files)  # loaded by the admin's CSS


def test_after_collectstatic_pages_load_hashed_names_cached_for_good(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "staticfiles"
    call_command("collectstatic", interactive=False, verbosity=0)
    client = Client()
    fetch = client_fetch(client)

    seen = crawl(fetch)

    assert problems(seen, fetch(MISSING_STATIC_FILE)) == []
    assert static("chat_app/no-such-file.js") == "/static/chat_app/no-such-file.js"  # not in the manifest
    widget = [path for path in seen if re.fullmatch(r"/static/chat_app/widget\.[0-9a-f]{12}\.js", path)]
    assert widget, sorted(seen)
    parts = {path for path in chat_app_static_files() if re.fullmatch(r"/static/chat_app/widget-\w+\.js", path)}
    assert parts and parts <= set(seen)  # the hashed widget.js loads its parts by their own names
    response = client.get(widget[0])
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    body_of(response)


def test_a_script_references_the_bare_file_names_it_quotes_beside_itself():
    script = Fetched(
        200,
        'text/javascript; charset="utf-8"',
        b'var PARTS = ["widget-api.js", \'widget-log.js\'];\nvar css = "widget.css";\n'
        b'// <script src="https://chat.example.com/static/chat_app/widget.js">, "vendor/lib.js", "a.json"',
    )

    found = references("http://testserver/static/chat_app/widget.js", script)

    assert found == ["/static/chat_app/widget-api.js", "/static/chat_app/widget-log.js", "/static/chat_app/widget.css"]
