"""What runs once as the server starts (chatapi.wsgi, chatapi.asgi), before its first request.

The apps above chatapi add their steps in AppConfig.ready(), so chatapi imports none of them; a
management command never runs them.
"""

from collections.abc import Callable

_steps: list[Callable[[], None]] = []


def server_start_register(step: Callable[[], None]) -> None:
    if step not in _steps:
        _steps.append(step)


def server_start_run() -> None:
    for step in _steps:
        step()
