"""gunicorn.conf.py: what the master loads before it forks the workers."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, as the gunicorn master is: in the test process everything is imported already.
PROBE = """
import json, runpy, sys, threading
import django
django.setup()
conf = runpy.run_path("gunicorn.conf.py")
names = conf["_modules_first_calls_import"]()
print(json.dumps({"names": names, "threads": threading.active_count(),
                  "imported_here": [n for n in names or () if n in sys.modules]}))
"""


def test_the_master_learns_the_first_calls_modules_from_a_child_and_stays_single_threaded():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatapi.settings", "PYTHONPATH": str(ROOT)}
    env.pop("COVERAGE_PROCESS_START", None)  # a forked child of a measured process would write its own file

    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])

    # The tokenizer, the HTTP transport and litellm's streaming helpers, among others.
    assert {"litellm.litellm_core_utils.default_encoding", "httpcore2._async.http11", "h11"} <= set(report["names"])
    assert report["imported_here"] == []  # learnt in the child: the master imports them itself after
    assert report["threads"] == 1  # litellm's logging threads started in the child only


WHEN_READY_PROBE = """
import json, runpy, sys, threading, types
import django
django.setup()
import chatapi.urls
app_alone = sorted(name for name in ("litellm", "openai") if name in sys.modules)
conf = runpy.run_path("gunicorn.conf.py")
warnings = []
log = types.SimpleNamespace(info=lambda *args: None, warning=lambda *args: warnings.append(args[0]))
conf["when_ready"](types.SimpleNamespace(cfg=types.SimpleNamespace(preload_app=True), log=log))
print(json.dumps({"app_alone": app_alone, "modules": sorted(sys.modules), "warnings": warnings,
                  "threads": threading.active_count()}))
"""


def test_the_master_preloads_litellm_that_the_app_alone_imports_on_first_use():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatapi.settings", "PYTHONPATH": str(ROOT)}
    env.pop("COVERAGE_PROCESS_START", None)

    done = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-c", WHEN_READY_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])

    assert report["app_alone"] == []  # the URLconf loaded, and still no model client
    preloaded = {"litellm", "openai", "litellm.litellm_core_utils.default_encoding", "httpcore2._async.http11", "h11"}
    assert preloaded <= set(report["modules"])  # the workers fork with all of it in shared memory
    assert report["warnings"] == []
    assert report["threads"] == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "http"), ("PORT", "70000"), ("LLM_TIMEOUT", "soon"), ("LOG_LEVEL", "loud"),
     ("LOG_FORMAT", "xml")],
)  # fmt: skip
def test_the_config_refuses_a_malformed_setting_with_one_line(name, value):
    env = {**os.environ, "PYTHONPATH": str(ROOT), name: value}

    done = subprocess.run(  # noqa: S603 - the venv's gunicorn and our config file
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "--check-config"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert f"{name}={value!r} is not valid: expected" in done.stderr
