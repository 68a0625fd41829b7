"""Fill a PostgreSQL database with 10,000 sessions and 1,000,000 messages; time the admin list pages.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatapi_scale SECRET_KEY=... ALLOWED_HOSTS=testserver \
     python manage.py migrate && python bench/admin_scale.py   (from the project folder, a fresh database)
"""

import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")
sys.path.insert(0, os.getcwd())
import django

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from chat_app.models import ChatMessage  # noqa: E402

SESSIONS, PER_SESSION = 10_000, 100


def fill() -> None:
    if ChatMessage.objects.count() >= SESSIONS * PER_SESSION:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO sessions_app_chatsession (id, email, email_hash, browser_hash, ip_address, created_at,
                   expires_at, last_activity_at, is_active, end_reason, user_message_count)
               SELECT 's' || lpad(g::text, 31, '0'), 'v' || g || '@example.com', md5(g::text) || md5(g::text),
                   md5('b'), '203.0.113.7', now() - (g || ' minutes')::interval, now() + interval '1 day', now(),
                   g %% 3 <> 0, '', %s FROM generate_series(1, %s) g""",
            [PER_SESSION // 2, SESSIONS],
        )
        cursor.execute(
            """INSERT INTO chat_app_chatmessage (session_id, kind, content, flagged, created_at, fallback, partial,
                   model, idempotency_key)
               SELECT 's' || lpad(((g - 1) / %s + 1)::text, 31, '0'),
                   CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END,
                   'message number ' || g, g %% 97 = 0, now(), false, false, '', NULL
               FROM generate_series(1, %s) g""",
            [PER_SESSION, SESSIONS * PER_SESSION],
        )
        cursor.execute("ANALYZE")


def timed(client: Client, path: str) -> str:
    client.get(path)  # warm
    best, queries = None, 0
    for _ in range(5):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        best = elapsed if best is None else min(best, elapsed)
        queries = len(captured)
    return f"| `{path}` | {best * 1000:.0f} ms | {queries} |"


def main() -> None:
    started = time.perf_counter()
    fill()
    print(f"filled in {time.perf_counter() - started:.0f} s: {ChatMessage.objects.count():,} messages")
    admin_user = {"is_staff": True, "is_superuser": True}
    user, _ = get_user_model().objects.get_or_create(username="scale-admin", defaults=admin_user)
    client = Client()
    client.force_login(user)
    session_id = "s" + "1".zfill(31)
    print("| page | best of 5 | queries |\n|---|---|---|")
    for path in [
        "/admin/sessions_app/chatsession/",
        "/admin/sessions_app/chatsession/?flagged=yes",
        "/admin/sessions_app/chatsession/?expired=no&is_active__exact=1",
        "/admin/sessions_app/chatsession/?q=v5000%40example.com",
        f"/admin/sessions_app/chatsession/{session_id}/change/",
        "/admin/chat_app/chatmessage/",
        "/admin/chat_app/chatmessage/?flagged__exact=1",
        "/admin/chat_app/chatmessage/?kind__exact=user&p=100",
        f"/admin/chat_app/chatmessage/?q={session_id}",
    ]:
        print(timed(client, path))


if __name__ == "__main__":
    main()
