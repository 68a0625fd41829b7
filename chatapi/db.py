"""Database connection handling around slow outside calls, and the async code's one way to the database."""

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection


def connection_release() -> None:
    """Give a pooled connection back before a long wait (the model); the next query takes one again.

    Without a pool, or inside a transaction, it does nothing: closing would cost a reconnect or
    break the transaction.
    """
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()


P = ParamSpec("P")
T = TypeVar("T")


def database_sync_to_async(function: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """`function` (database code) awaited from async code, run in the request's thread.

    Django runs all of one request's synchronous code in one thread of its own, so one request
    keeps one pooled connection from step to step; after each step the connection goes back to
    the pool, since what follows is a wait (the model, the client) that needs none.
    """

    @wraps(function)
    def step(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connection_release()

    return sync_to_async(step, thread_sensitive=True)


def shared_database_sync_to_async(function: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """`function` (database code) awaited from async code, run on the shared thread pool.

    For requests that live long (a stream held open): asgiref gives a request that makes a
    thread-sensitive call a thread of its own until the response ends. The connection goes back
    to the pool after each step; without a pool, each of the few shared threads keeps its own.
    """

    @wraps(function)
    def step(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connection_release()

    return sync_to_async(step, thread_sensitive=False)
