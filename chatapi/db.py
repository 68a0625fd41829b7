"""Database connection handling around slow outside calls, and the async code's one way to the database."""

from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery


def connection_release() -> None:
    """Give a pooled connection back before a long wait (the model); the next query takes one again.

    Without a pool, or inside a transaction, it does nothing: closing would cost a reconnect or
    break the transaction.
    """
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()


P = ParamSpec("P")
T = TypeVar("T")


def database_sync_to_async(function: Callable[P, T], *, thread_sensitive: bool = True) -> Callable[P, Awaitable[T]]:
    """`function` (database code) awaited from async code, run in the request's thread.

    Django runs all of one request's synchronous code in one thread of its own, so one request
    keeps one pooled connection from step to step; after each step the connection goes back to
    the pool, since what follows is a wait (the model, the client) that needs none.

    With `thread_sensitive=False`, on the shared thread pool instead: for requests that live long (a
    stream held open), since asgiref keeps a request's own thread until its response ends. Without
    a pool, each of the few shared threads keeps its own connection.
    """

    @wraps(function)
    def step(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connection_release()

    return sync_to_async(step, thread_sensitive=thread_sensitive)


def shared_database_sync_to_async(function: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """database_sync_to_async on the shared thread pool (see there)."""
    return database_sync_to_async(function, thread_sensitive=False)


def update_returning(queryset: QuerySet, returning: Sequence[str], **values) -> list[tuple]:
    """`queryset.update(**values)` that also reads back `returning` from each row it changed, in the same
    statement (UPDATE ... RETURNING: PostgreSQL, SQLite >= 3.35); Django's update() tells only a count.

    The UPDATE is Django's own, compiled from the queryset, so its conditions stay ORM lookups.
    """
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    statement, params = query.get_compiler(queryset.db).as_sql()
    database = connections[queryset.db]
    fields = [queryset.model._meta.get_field(name) for name in returning]
    columns = ", ".join(database.ops.quote_name(field.column) for field in fields)  # the model's own, never input
    with database.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {columns}", params)
        return cursor.fetchall()
