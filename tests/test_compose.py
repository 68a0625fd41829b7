"""compose.yaml runs the five parts from one image: no container engine runs here, so its shape is checked."""

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"


def test_compose_runs_the_server_the_worker_and_the_listener_on_postgresql_and_redis():
    services = yaml.safe_load(COMPOSE.read_text())["services"]

    assert set(services) == {"web", "worker", "listener", "db", "redis"}
    assert services["worker"]["command"] == ["python", "manage.py", "notifications_worker"]
    assert services["listener"]["command"] == ["python", "manage.py", "discord_gateway"]
    assert "command" not in services["web"]  # the image's CMD: gunicorn -c gunicorn.conf.py
    for name in ("web", "worker", "listener"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://") and environment["CACHE_URL"].startswith("redis://")
        assert services[name]["image"] == "chatapi"
