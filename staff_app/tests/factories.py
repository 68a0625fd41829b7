"""Builders for the staff console's tests."""

from django.contrib.admin.utils import quote
from django.urls import reverse

from sessions_app.models import ChatSession


def admin_session_url(session: ChatSession, view: str = "change") -> str:
    """A session's admin page, its id quoted as the admin quotes it: ids may hold "_", its escape."""
    return reverse(f"admin:sessions_app_chatsession_{view}", args=[quote(session.pk)])
