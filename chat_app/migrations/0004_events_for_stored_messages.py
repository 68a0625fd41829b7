"""Events for the messages stored before events existed, so `/chat/events` shows whole conversations."""

from django.db import migrations


def events_backfill(apps, schema_editor):
    ChatMessage = apps.get_model("chat_app", "ChatMessage")
    ChatEvent = apps.get_model("chat_app", "ChatEvent")
    ChatSession = apps.get_model("sessions_app", "ChatSession")
    for session_id in ChatSession.objects.filter(event_seq=0).values_list("pk", flat=True).iterator():
        messages = list(ChatMessage.objects.filter(session_id=session_id).order_by("id").values_list("pk", "created_at"))
        if not messages:
            continue
        ChatEvent.objects.bulk_create(
            ChatEvent(session_id=session_id, seq=seq, kind="message", message_id=pk, created_at=created_at)
            for seq, (pk, created_at) in enumerate(messages, start=1)
        )
        ChatSession.objects.filter(pk=session_id).update(event_seq=len(messages))


class Migration(migrations.Migration):
    dependencies = [("chat_app", "0003_staff_messages_and_events")]

    operations = [migrations.RunPython(events_backfill, migrations.RunPython.noop, elidable=True)]
