"""Fill bench sessions with stored exchanges through the project's own models: `prefill.py N ID...`.

Run with the bench's DATABASE_URL and PYTHONPATH set to the project, so fields added to the models
later get their defaults without this script knowing them. The texts are shared with the yardstick.
"""

import os
import sys
from datetime import timedelta

QUESTION = "Could you tell me more about your pricing plans for small teams, and whether there is a trial? #{n}"
ANSWER = (
    "Of course! We offer three plans for small teams: Starter, Team and Business. Every plan comes with "
    "a 14-day free trial, no credit card needed, and you can switch plans at any time from the settings. #{n}"
)


def sessions_fill(session_ids: list[str], exchanges: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")
    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from chat_app.models import ChatMessage
    from sessions_app.models import ChatSession

    start = timezone.now() - timedelta(hours=1)
    for session_id in session_ids:
        with transaction.atomic():
            asked = ChatMessage.objects.bulk_create(
                ChatMessage(
                    session_id=session_id,
                    kind=ChatMessage.Kind.USER,
                    content=QUESTION.format(n=n),
                    created_at=start + timedelta(seconds=2 * n),
                )
                for n in range(exchanges)
            )
            ChatMessage.objects.bulk_create(
                ChatMessage(
                    session_id=session_id,
                    kind=ChatMessage.Kind.ASSISTANT,
                    in_reply_to=message,
                    content=ANSWER.format(n=n),
                    model="openai/stub",
                    created_at=message.created_at + timedelta(seconds=1),
                )
                for n, message in enumerate(asked)
            )
            ChatSession.objects.filter(pk=session_id).update(user_message_count=exchanges)


if __name__ == "__main__":
    sessions_fill(sys.argv[2:], int(sys.argv[1]))
