"""The yardstick's tables and async engine (asyncpg): YARDSTICK_DATABASE_URL, YARDSTICK_POOL_SIZE."""

import os
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DATABASE_URL = os.environ.get("YARDSTICK_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/yardstick")
POOL_SIZE = int(os.environ.get("YARDSTICK_POOL_SIZE", "10"))


class Base(DeclarativeBase):
    pass


class YardSession(Base):
    __tablename__ = "yard_session"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    user_message_count: Mapped[int] = mapped_column(Integer, default=0)


class YardMessage(Base):
    __tablename__ = "yard_message"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("yard_session.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("yard_message.id"), unique=True)
    model: Mapped[str] = mapped_column(String(128), default="")
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 8))

    __table_args__ = (
        Index("yard_message_session_kind_id", "session_id", "kind", "id"),
        Index("yard_message_session_id", "session_id", "id"),
    )


engine = create_async_engine(DATABASE_URL, pool_size=POOL_SIZE, max_overflow=POOL_SIZE, pool_pre_ping=False)
Db = async_sessionmaker(engine, expire_on_commit=False)
