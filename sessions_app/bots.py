"""Bot detection: a user agent shorter than MIN_USER_AGENT_LENGTH looks scripted."""

import logging

from django.conf import settings
from rest_framework.permissions import BasePermission

logger = logging.getLogger(__name__)

BOT_DETECTED = "Request refused: this client looks automated."


class NotABot(BasePermission):
    message = BOT_DETECTED

    def has_permission(self, request, view) -> bool:
        if not settings.BOT_DETECTION_ENABLED:
            return True
        user_agent = request.META.get("HTTP_USER_AGENT", "")
        if len(user_agent.strip()) >= settings.MIN_USER_AGENT_LENGTH:
            return True
        logger.warning("bot-like user agent refused", extra={"client_ip": request.client_ip})
        return False
