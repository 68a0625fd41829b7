"""Start-up steps: each app's, run once per server start, in the order the apps registered them."""

from chatapi import startup


def test_server_start_runs_each_registered_step_once(monkeypatch):
    monkeypatch.setattr(startup, "_steps", [])
    ran = []

    def first() -> None:
        ran.append("first")

    def second() -> None:
        ran.append("second")

    for step in (first, second, first):  # an app's ready() may run twice; its step still runs once
        startup.server_start_register(step)
    startup.server_start_run()

    assert ran == ["first", "second"]


def test_chat_app_registers_the_model_client_start():
    from chat_app.llm import model_client_prepare

    assert model_client_prepare in startup._steps
