"""Production server settings: `gunicorn -c gunicorn.conf.py`. Tuned through the environment."""

import logging
import os
import sys

from chatapi.environment import SettingsEnv
from chatapi.logformat import LOG_FORMATTERS, SECRET_SETTINGS, PrivateDataFilter

env = SettingsEnv()  # a malformed value stops the start with one line
# The same .env the app reads (the environment wins), so CACHE_URL there also shapes the server.
_env_file = os.environ.get("ENV_FILE") or os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env")
if os.path.isfile(_env_file):
    SettingsEnv.read_env(_env_file, overwrite=False)

wsgi_app = "chatapi.asgi:application"
# Every interface: a container's port; TLS goes in front.
bind = f"0.0.0.0:{env.int('PORT', default=8000, minimum=1, maximum=65535)}"

# gunicorn's own ASGI worker: one event loop per process (uvloop), so a visitor waiting on the model,
# an open stream or a slow client costs a coroutine, not a worker (docs/adr/0001-serving-model.md).
worker_class = "asgi"
worker_connections = 4096  # open connections per process; idle streams are cheap


def _default_workers() -> int:
    """Every core when the cache is shared; one process when it is local memory, where each
    process would keep its own rate-limit counters (`manage.py check` warns, chatapi.W001)."""
    shared = (env.str("CACHE_URL", default="") or "").startswith(("redis://", "rediss://", "unix://"))
    return len(os.sched_getaffinity(0)) if shared else 1


workers = env.int("WEB_CONCURRENCY", default=_default_workers(), minimum=1)

# Load the app, and with it the URLconf and litellm (~4 s and ~200 MB), once in the master;
# the workers share that memory copy-on-write and start at once.
preload_app = True

# A chat can wait LLM_TIMEOUT seconds for the model, and an idempotent retry a little longer: let it
# finish on shutdown. (A worker's event loop answers the master's heartbeat meanwhile.)
_llm_timeout = int(env.float("LLM_TIMEOUT", default=30, above=True))
graceful_timeout = _llm_timeout + 15
keepalive = 5  # above 2 so a reverse proxy's pooled connections are not cut mid-reuse

# Proxies allowed to set X-Forwarded-Proto for gunicorn (the app itself trusts NUM_PROXIES hops).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Heartbeat files on a RAM disk: on a container's overlay disk a slow fchmod can stall a worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a directory, not a file
# No runtime control socket: nothing uses gunicornc, and two servers on one host would fight over it.
control_socket_disable = True

# Access log on stdout. The path only: a query string or a header (Authorization, Referer) could
# carry a token. Its request_id field is the response's X-Request-ID, so access and app lines join up.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'


class _RequestIdField(logging.Filter):
    """Give gunicorn's records the `request_id` field that the app's own log lines carry."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else {}
        record.request_id = atoms.get("{x-request-id}o", "-")
        return True


# Gunicorn's own lines in the app's format, so one parser reads them all, and through the app's
# privacy filter (an error line can quote a whole request line). Read from the environment only
# (not .env): set LOG_FORMAT=text there for plain lines.
_log_format = env.choice("LOG_FORMAT", "json", ("json", "text"))
_log_level = env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": _RequestIdField},
        "private": {"()": PrivateDataFilter, "secrets": [os.environ.get(name) for name in SECRET_SETTINGS]},
    },
    "formatters": LOG_FORMATTERS,
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id", "private"],
            "formatter": "text" if _log_format == "text" else "json",
        },
    },
    "root": {"level": _log_level, "handlers": ["console"]},  # replaced by the app's LOGGING once it loads
    "loggers": {
        "gunicorn.error": {"level": _log_level, "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}


def _modules_first_calls_import() -> list[str] | None:
    """The modules the app imports on its first model call and first stream, learnt in a child.

    The child makes the calls (chat_app.warm_up.client_warm_up, on loopback) and reports what they imported;
    the master stays single-threaded, as a process about to fork must. None when the child failed.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running any of the master's exit handlers
        status = 1
        try:
            os.close(read_end)
            from chat_app.warm_up import client_warm_up

            before = set(sys.modules)
            client_warm_up()
            with os.fdopen(write_end, "w") as report:
                report.write("\n".join(sorted(set(sys.modules) - before)))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as report:
        names = report.read().split()
    _, status = os.waitpid(pid, 0)
    return names if status == 0 else None


def when_ready(server) -> None:
    """Load, in the master before the workers fork, what each worker would otherwise load itself.

    The URLconf and litellm (which commands never import: chatapi.wsgi loads it as the server
    starts), then what litellm imports lazily on its first call and first stream (its tokenizer
    alone is ~40 MB): the workers share it all copy-on-write, and no visitor's first request waits
    on an import.
    """
    if server.cfg.preload_app:
        import gc
        import importlib

        from django.urls import resolve

        from chat_app.llm import litellm_client

        resolve("/health")
        litellm_client()
        names = _modules_first_calls_import()
        if names is None:
            server.log.warning("model client warm-up failed: each worker imports what it needs itself")
        for name in names or ():
            try:
                importlib.import_module(name)
            except ImportError:  # a module imported only in the child's circumstances: only memory is lost
                server.log.info("not preloaded: %s", name)
        server.log.info("preloaded %d modules of the first model call", len(names or ()))
        gc.collect()
        gc.freeze()  # the collector no longer writes to, and so copies, the pages the workers share
