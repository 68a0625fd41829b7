"""Database connection handling around slow outside calls."""

from django.db import connection


def connection_release() -> None:
    """Give a pooled connection back before a long wait (the model); the next query takes one again.

    Without a pool, or inside a transaction, it does nothing: closing would cost a reconnect or
    break the transaction.
    """
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()
