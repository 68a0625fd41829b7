"""Signals of the conversation that other apps turn into side effects (a ping in Discord)."""

from django.dispatch import Signal

# Sent inside the transaction that records a visitor's request for a person; `session` is the ChatSession.
human_requested = Signal()
