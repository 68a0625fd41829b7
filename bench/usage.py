"""`/api/v1/staff/usage` for 90 days over 1,000,000 stored messages, on PostgreSQL (issue 15's target: < 300 ms).

Fills a fresh database with 10,000 sessions and 1,000,000 messages spread over the last 90 days
(half of them replies, each with a model latency, tokens and a cost), builds the daily roll-up from
them with the migration that counts what was stored before usage was (chat_app 0006), then times
the API (JSON and CSV) and the console's page.

Run: DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatapi_usage SECRET_KEY=... ALLOWED_HOSTS=testserver \
     python manage.py migrate && python bench/usage.py   (from the project folder, a fresh database)
"""

import importlib
import os
import statistics
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatapi.settings")
sys.path.insert(0, os.getcwd())
import django

django.setup()
from django.apps import apps  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from chat_app.models import ChatMessage  # noqa: E402
from usage_app.models import DailyUsage  # noqa: E402
from usage_app.recording import utc_day  # noqa: E402

SESSIONS, PER_SESSION, DAYS = 10_000, 100, 90


def fill() -> None:
    if ChatMessage.objects.count() >= SESSIONS * PER_SESSION:
        return
    with transaction.atomic(), connection.cursor() as cursor:  # all or nothing, so a rerun starts clean
        cursor.execute(
            """INSERT INTO sessions_app_chatsession (id, email, email_hash, browser_hash, ip_address, created_at,
                   expires_at, last_activity_at, is_active, end_reason, user_message_count, mode, event_seq,
                   prompt_tokens, completion_tokens, cost_usd)
               SELECT 's' || lpad(g::text, 31, '0'), 'v' || g || '@example.com', md5(g::text) || md5(g::text),
                   md5('b'), '203.0.113.7', now() - ((g %% %s) || ' days')::interval, now() + interval '1 day',
                   now(), false, 'expired', %s, 'ai', 0, 0, 0, 0 FROM generate_series(1, %s) g""",
            [DAYS, PER_SESSION // 2, SESSIONS],
        )
        # Odd numbers are visitor messages, even ones the replies to the message before them.
        cursor.execute(
            """INSERT INTO chat_app_chatmessage (id, session_id, kind, content, flagged, created_at, fallback, partial,
                   model, idempotency_key, to_staff, author, usage_estimated, in_reply_to_id, latency_ms,
                   prompt_tokens, completion_tokens, cost_usd)
               SELECT g, 's' || lpad(((g - 1) / %s + 1)::text, 31, '0'),
                   CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END, 'message number ' || g, g %% 97 = 0,
                   now() - ((((g - 1) / %s + 1) %% %s) || ' days')::interval, g %% 50 = 0, false,
                   CASE WHEN g %% 2 = 0 THEN 'gemini-2.5-flash-lite' ELSE '' END, NULL, false, '', false,
                   CASE WHEN g %% 2 = 0 THEN g - 1 END,
                   CASE WHEN g %% 2 = 0 AND g %% 50 <> 0 THEN 300 + (g::bigint * 7919) %% 2500 END,
                   CASE WHEN g %% 2 = 0 THEN 400 + g %% 300 END, CASE WHEN g %% 2 = 0 THEN 60 + g %% 90 END,
                   CASE WHEN g %% 2 = 0 THEN 0.00006 END
               FROM generate_series(1, %s) g""",
            [PER_SESSION, PER_SESSION, DAYS, SESSIONS * PER_SESSION],
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('chat_app_chatmessage', 'id'), %s)", [SESSIONS * PER_SESSION]
        )
    DailyUsage.objects.all().delete()
    backfill = importlib.import_module("chat_app.migrations.0006_usage_backfill")
    started = time.perf_counter()
    backfill.usage_backfill(apps, None)
    print(f"roll-up built in {time.perf_counter() - started:.0f} s: {DailyUsage.objects.count():,} rows")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(client: Client, path: str, **headers) -> str:
    client.get(path, **headers)  # warm
    times, queries = [], 0
    for _ in range(20):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(path, **headers)
            times.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        queries = len(captured)
    return f"| `{path}` | {statistics.median(times) * 1000:.1f} ms | {max(times) * 1000:.1f} ms | {queries} |"


def main() -> None:
    started = time.perf_counter()
    fill()
    print(f"filled in {time.perf_counter() - started:.0f} s: {ChatMessage.objects.count():,} messages")
    user, _ = get_user_model().objects.get_or_create(username="usage-admin", defaults={"is_staff": True})
    token = str(RefreshToken.for_user(user).access_token)
    client = Client()
    client.force_login(user)
    last = utc_day()
    first = last.fromordinal(last.toordinal() - DAYS + 1)
    span = f"from={first}&to={last}"
    print("| request (90 days) | median of 20 | slowest | queries |\n|---|---|---|---|")
    for path in [f"/api/v1/staff/usage?{span}", f"/api/v1/staff/usage?{span}&format=csv"]:
        print(timed(client, path, HTTP_AUTHORIZATION=f"Bearer {token}"))
    print(timed(client, f"/admin/usage/?{span}"))


if __name__ == "__main__":
    main()
