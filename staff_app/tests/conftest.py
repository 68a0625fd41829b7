"""Fixtures for the staff room's tests, borrowed from the apps whose rows it shows."""

from notifications_app.tests.conftest import discord_on  # noqa: F401 - a fixture: Discord deliveries queued
