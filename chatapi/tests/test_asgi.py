"""chatapi.asgi, the application gunicorn serves: what its per-request path costs."""

import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import chatapi.asgi
from django.core.signals import request_finished, request_started
print(request_started.has_listeners(), request_finished.has_listeners())
"""


def test_request_started_costs_no_thread_hop_but_request_finished_still_closes_connections():
    # A synchronous receiver of request_started would send every request to a thread and back before
    # its view runs; request_finished must keep close_old_connections, which hands a sync view's
    # pooled connection back from the request's thread.
    env = {**os.environ, "DEBUG": "True", "ENV_FILE": "/nonexistent", "LLM_MODEL": ""}
    probe = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )

    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.split() == ["False", "True"]
