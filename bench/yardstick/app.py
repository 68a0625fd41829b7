"""Yardstick for bench/run: the chat path in FastAPI + async SQLAlchemy (asyncpg) + litellm.

The same work per chat as the project: bearer JWT whose `jti` names the session, the session row
loaded, a conditional UPDATE against the message cap and the visitor message inserted in one short
transaction, one context query (the last LLM_CONTEXT_MESSAGES messages), the model called with no
database connection held, the reply inserted, a JSON answer. And the history read in one query.
`POST /api/v1/chat/stream` does the same work with the reply streamed through litellm's
`acompletion(stream=True)` as `event: delta` lines and one closing `event: done`, as the API contract
has them; `GET /api/v1/chat/events` with `Accept: text/event-stream` holds the connection and writes
a comment line every 15 s (no events, no long poll: it stands in for row G's idle streams). Every
answer carries `X-Request-ID`, the client's own when it sent a safe one, as the contract asks.
Served by `uvicorn app:app --app-dir bench/yardstick --workers N`; `python app.py --create-tables`
makes its tables (tables.py). Configured by YARDSTICK_DATABASE_URL, YARDSTICK_SECRET, YARDSTICK_POOL_SIZE and
the project's LLM_* variables.
"""

import asyncio
import html
import json
import os
import re
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no price-map fetch at import time
import jwt
import litellm
import nh3
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from tables import Base, Db, YardMessage, YardSession, engine

litellm.turn_off_message_logging = True
litellm.suppress_debug_info = True
litellm.drop_params = True

SECRET = os.environ.get("YARDSTICK_SECRET", "yardstick-secret")
MAX_MESSAGES = int(os.environ.get("MAX_MESSAGES_PER_SESSION", "50"))
CONTEXT_MESSAGES = int(os.environ.get("LLM_CONTEXT_MESSAGES", "8"))
LLM = {
    "model": os.environ.get("LLM_MODEL", "openai/stub"),
    "api_key": os.environ.get("LLM_API_KEY") or None,
    "api_base": os.environ.get("LLM_API_BASE") or None,
    "timeout": float(os.environ.get("LLM_TIMEOUT", "30")),
    "max_tokens": int(os.environ.get("LLM_MAX_TOKENS", "500")),
    "temperature": float(os.environ.get("LLM_TEMPERATURE", "0.7")),
    "num_retries": 0,
    "max_retries": 0,
}
SYSTEM_PROMPT = "You are a helpful, concise assistant on a company's web site. Answer visitors' questions politely."
FALLBACK_REPLY = "Sorry, I can't answer right now. Your message has been saved; please try again in a moment."
REFUSAL_REPLY = "I'm sorry, but I can't help with that message. For everyone's safety, please rephrase it."
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
DANGEROUS = re.compile(  # a condensed form of the project's patterns, about as costly to run
    r"javascript\s{0,10}:|<\s{0,10}(?:script|iframe|object|embed|svg)\b|\bon(?:error|load|click)\s{0,10}="
    r"|union\s{1,20}(?:all\s{1,20})?select|;\s{0,20}drop\s{1,20}(?:table|database)|'\s{0,20}or\s{0,20}'"
    r"|;\s{0,20}(?:cat|rm|wget|curl|nc|bash|sh)\s|\|\s{0,20}(?:whoami|sh|bash|nc)\b|\$\([^)]{0,200}\)"
    r"|\.\./|\.\.\\|\{\{[^}]{0,500}\}\}|\$\{[^}]{0,500}\}|\$(?:gt|gte|lt|ne|where|regex)\b|\*\)\(",
    re.IGNORECASE,
)


app = FastAPI(title="yardstick", openapi_url=None, docs_url=None, redoc_url=None)
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class RequestId:
    """Pure ASGI middleware: X-Request-ID on every answer, the client's own when it is safe."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        sent = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        request_id = sent if SAFE_REQUEST_ID.match(sent) else uuid.uuid4().hex.encode()

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        return await self.app(scope, receive, send_with_id)


app.add_middleware(RequestId)


class EmailIn(BaseModel):
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ChatIn(BaseModel):
    message: str = Field(min_length=1, max_length=4000)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int
    session_id: str


class ChatOut(BaseModel):
    success: bool = True
    message_id: int
    response: str
    response_id: int
    flagged: bool
    fallback: bool
    timestamp: datetime


class ExchangeOut(BaseModel):
    id: int
    message: str
    response: str
    timestamp: datetime
    flagged: bool


class HistoryOut(BaseModel):
    session_id: str
    messages: list[ExchangeOut]


def unauthorized() -> HTTPException:
    return HTTPException(401, "Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})


def bearer_session_id(authorization: str = Header("")) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        raise unauthorized()
    try:
        return jwt.decode(token, SECRET, algorithms=["HS256"], audience="chatapi")["jti"]
    except (jwt.PyJWTError, KeyError) as exc:
        raise unauthorized() from exc


async def live_session(db: AsyncSession, session_id: str) -> YardSession:
    row = await db.scalar(
        select(YardSession).where(
            YardSession.id == session_id, YardSession.is_active, YardSession.expires_at > datetime.now(UTC)
        )
    )
    if row is None:
        raise unauthorized()
    return row


def visitor_text(raw: str) -> tuple[str, bool]:
    visible = CONTROL.sub("", raw)
    text = html.unescape(nh3.clean(visible.replace("&", "&amp;"), tags=set(), attributes={})).strip()
    if not text:
        raise HTTPException(400, "Message must not be blank.")
    return text, bool(DANGEROUS.search(raw) or DANGEROUS.search(text))


@app.get("/health")
async def health() -> dict:
    """The database reached, as the project's /health does (this service has no cache to check)."""
    async with engine.connect() as conn:
        await conn.execute(sql_text("SELECT 1"))
    return {"status": "healthy", "database": "connected", "timestamp": datetime.now(UTC).isoformat()}


@app.post("/api/v1/auth/email", status_code=201, response_model=TokenOut)
async def auth_email(body: EmailIn) -> TokenOut:
    now = datetime.now(UTC)
    session = YardSession(
        id=secrets.token_urlsafe(24), email=body.email, created_at=now, expires_at=now + timedelta(hours=24)
    )
    session.last_activity_at, session.is_active, session.user_message_count = now, True, 0
    async with Db() as db, db.begin():
        db.add(session)
    claims = {"jti": session.id, "aud": "chatapi", "iat": now, "exp": session.expires_at, "token_type": "visitor"}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    return TokenOut(access_token=token, expires_in=24 * 3600, session_id=session.id)


async def message_store(session_id: str, text: str, flagged: bool) -> tuple[YardMessage, list[dict[str, str]]]:
    """Auth row, cap + insert in one transaction, then the context query; the connection goes back after."""
    async with Db() as db:
        await live_session(db, session_id)
        await db.commit()
        now = datetime.now(UTC)
        async with db.begin():
            counted = await db.execute(
                update(YardSession)
                .where(YardSession.id == session_id, YardSession.user_message_count < MAX_MESSAGES)
                .values(user_message_count=YardSession.user_message_count + 1, last_activity_at=now)
            )
            if counted.rowcount == 0:
                raise HTTPException(429, "Message limit reached")
            message = YardMessage(session_id=session_id, kind="user", content=text, flagged=flagged, created_at=now)
            db.add(message)
        reply = aliased(YardMessage)
        rows = await db.execute(
            select(YardMessage.content, reply.content)
            .outerjoin(reply, reply.in_reply_to_id == YardMessage.id)
            .where(YardMessage.session_id == session_id, YardMessage.kind == "user", YardMessage.id < message.id)
            .order_by(YardMessage.id.desc())
            .limit(CONTEXT_MESSAGES // 2 + 1)
        )
        await db.commit()
    turns: list[dict[str, str]] = []
    for said, answered in reversed(rows.all()):
        if answered is not None:
            turns += [{"role": "user", "content": said}, {"role": "assistant", "content": answered}]
    return message, turns[-CONTEXT_MESSAGES:]


async def model_answer(turns: list[dict[str, str]], text: str) -> dict:
    started = time.perf_counter()
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, *turns, {"role": "user", "content": text}]
    try:
        response = await litellm.acompletion(messages=messages, **LLM)
        content = response.choices[0].message.content
        if not isinstance(content, str) or not content.strip():
            raise ValueError("empty reply")
    except Exception:  # noqa: BLE001 - any model failure is answered with the fallback
        return {"content": FALLBACK_REPLY, "fallback": True}
    try:
        cost = Decimal(str(round(litellm.completion_cost(completion_response=response), 8)))
    except Exception:  # noqa: BLE001 - unknown models have no price
        cost = None
    usage = getattr(response, "usage", None)
    return {
        "content": content,
        "model": str(response.model or LLM["model"])[:128],
        "latency_ms": int((time.perf_counter() - started) * 1000),
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
        "cost_usd": cost,
    }


@app.post("/api/v1/chat", response_model=ChatOut)
async def chat(body: ChatIn, session_id: str = Depends(bearer_session_id)) -> ChatOut:
    text, flagged = visitor_text(body.message)
    message, turns = await message_store(session_id, text, flagged)
    answer = {"content": REFUSAL_REPLY} if flagged else await model_answer(turns, text)
    reply = YardMessage(
        session_id=session_id, kind="assistant", in_reply_to_id=message.id, created_at=datetime.now(UTC), **answer
    )
    async with Db() as db, db.begin():
        db.add(reply)
    return ChatOut(
        message_id=message.id,
        response=reply.content,
        response_id=reply.id,
        flagged=flagged,
        fallback=bool(reply.fallback),
        timestamp=reply.created_at,
    )


@app.get("/api/v1/chat/history", response_model=HistoryOut)
async def history(limit: int = Query(50, ge=1, le=200), session_id: str = Depends(bearer_session_id)) -> HistoryOut:
    reply = aliased(YardMessage)
    async with Db() as db:
        await live_session(db, session_id)
        rows = await db.execute(
            select(YardMessage, reply.content)
            .outerjoin(reply, reply.in_reply_to_id == YardMessage.id)
            .where(YardMessage.session_id == session_id, YardMessage.kind == "user")
            .order_by(YardMessage.id.desc())
            .limit(limit)
        )
        await db.commit()
    exchanges = [
        ExchangeOut(id=m.id, message=m.content, response=answered or "", timestamp=m.created_at, flagged=m.flagged)
        for m, answered in reversed(rows.all())
    ]
    return HistoryOut(session_id=session_id, messages=exchanges)


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_cost(prompt: int | None, completion: int | None) -> Decimal | None:
    try:
        cost = litellm.cost_per_token(model=LLM["model"], prompt_tokens=prompt or 0, completion_tokens=completion or 0)
        return Decimal(str(round(sum(cost), 8)))
    except Exception:  # noqa: BLE001 - unknown models have no price
        return None


@app.post("/api/v1/chat/stream")
async def chat_stream(body: ChatIn, session_id: str = Depends(bearer_session_id)) -> StreamingResponse:
    """The checks and the visitor's message first (errors as JSON), then the reply as the model writes it."""
    text, flagged = visitor_text(body.message)
    message, turns = await message_store(session_id, text, flagged)

    async def events():
        parts, answer, broken = [], {}, False
        started = time.perf_counter()
        if flagged:
            parts.append(REFUSAL_REPLY)
            yield sse("delta", {"content": REFUSAL_REPLY})
        else:
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *turns, {"role": "user", "content": text}]
            usage = None
            try:
                stream = await litellm.acompletion(
                    messages=messages, stream=True, stream_options={"include_usage": True}, **LLM
                )
                async for chunk in stream:
                    usage = getattr(chunk, "usage", None) or usage
                    piece = chunk.choices[0].delta.content if chunk.choices else None
                    if piece:
                        parts.append(piece)
                        yield sse("delta", {"content": piece})
                if not parts:
                    raise ValueError("empty reply")
            except Exception:  # noqa: BLE001 - any model failure: the fallback, or an error mid-stream
                broken = bool(parts)
                if not parts:
                    answer["fallback"] = True
                    parts.append(FALLBACK_REPLY)
                    yield sse("delta", {"content": FALLBACK_REPLY})
            if not answer:
                prompt, completion = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
                answer = {"model": LLM["model"], "prompt_tokens": prompt, "completion_tokens": completion}
                answer |= {"cost_usd": stream_cost(prompt, completion)}
                answer |= {"latency_ms": int((time.perf_counter() - started) * 1000)}
        reply = YardMessage(
            session_id=session_id,
            kind="assistant",
            in_reply_to_id=message.id,
            created_at=datetime.now(UTC),
            content="".join(parts),
            **answer,
        )
        async with Db() as db, db.begin():
            db.add(reply)
        if broken:
            yield sse("error", {"detail": "The model stopped answering."})
            return
        done = {"message_id": message.id, "response_id": reply.id, "flagged": flagged}
        yield sse("done", done | {"fallback": bool(answer.get("fallback")), "mode": "ai"})

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@app.get("/api/v1/chat/events", response_model=None)
async def chat_events(request: Request, session_id: str = Depends(bearer_session_id)):
    """With Accept: text/event-stream, a stream held open with a comment line every 15 s; else no events."""
    async with Db() as db:
        await live_session(db, session_id)
        await db.commit()
    if "text/event-stream" not in request.headers.get("accept", ""):
        return {"events": [], "cursor": ""}

    async def idle():
        while True:
            await asyncio.sleep(15)
            yield b": keep-alive\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(idle(), media_type="text/event-stream", headers=headers)


async def _create_tables() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


if __name__ == "__main__" and sys.argv[1:] == ["--create-tables"]:
    asyncio.run(_create_tables())
