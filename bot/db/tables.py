"""Database tables (SQLAlchemy 2 typed models). Alembic migrations in bot/migrations mirror these."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# BigInteger ids that stay INTEGER on SQLite (so they autoincrement there).
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Org(Base):
    """An organisation in the tree: committee / general branch / branch / Party group."""

    __tablename__ = "orgs"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(String(400), unique=True)  # "机关党委/第一党支部"
    kind: Mapped[str] = mapped_column(String(20))  # committee | general_branch | branch | group
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"), index=True)
    unit_type: Mapped[str] = mapped_column(String(20), default="")  # 机关/国企/两新/事业单位
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_orgs_name", "name"),)


class Member(Base):
    __tablename__ = "members"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    mobile: Mapped[str | None] = mapped_column(String(20), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)  # the branch
    group_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id"))  # Party group, if any
    # Roles as ",书记,管理员," so SQL can filter with LIKE '%,管理员,%' on any backend.
    roles: Mapped[str] = mapped_column(String(200), default=",党员,")
    category: Mapped[str] = mapped_column(String(20), default="在职")
    dues_base_fen: Mapped[int | None] = mapped_column(BigInteger)  # private
    dingtalk_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    leave_until: Mapped[dt.date | None] = mapped_column(Date)
    leave_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_members_name", "name"), Index("ix_members_org_active", "org_id", "active"))

    @property
    def role_list(self) -> list[str]:
        return [r for r in (self.roles or "").split(",") if r]

    @staticmethod
    def pack_roles(roles: list[str]) -> str:
        return "," + ",".join(dict.fromkeys(r.strip() for r in roles if r.strip())) + ","


class ChatBinding(Base):
    """A chat (group) bound to an organisation, from config [[groups]] or /bind."""

    __tablename__ = "chat_bindings"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str] = mapped_column(String(200))
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"), index=True)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    webhook_secret: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (UniqueConstraint("platform", "conversation_id", name="uq_chat_binding"),)


class Campaign(Base):
    """One collection of one form for one period and scope, with a deadline."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(20))  # "2026-11", "2026-Q4", "2026", "2026-11-27"
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id"))
    schedule_key: Mapped[str] = mapped_column(String(50), default="")  # "" for ad-hoc campaigns
    title: Mapped[str] = mapped_column(String(200))
    audience: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # roles/categories filter
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    deadline_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    __table_args__ = (
        UniqueConstraint("form_key", "period", "org_id", "schedule_key", name="uq_campaign"),
        Index("ix_campaigns_org_deadline", "org_id", "deadline_at"),
        Index("ix_campaigns_form_period", "form_key", "period"),
        Index("ix_campaigns_org_form_period", "org_id", "form_key", "period"),  # reports (migration 0002)
    )


class Response(Base):
    """A member's answer to a campaign: one row per (campaign, member); revisions kept separately."""

    __tablename__ = "responses"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    amount_fen: Mapped[int | None] = mapped_column(BigInteger)  # money forms: for SQL aggregation
    revision: Mapped[int] = mapped_column(Integer, default=1)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_note: Mapped[str] = mapped_column(String(200), default="")
    entered_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    platform: Mapped[str] = mapped_column(String(20), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (UniqueConstraint("campaign_id", "member_id", name="uq_response"),)


class ResponseRevision(Base):
    __tablename__ = "response_revisions"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    response_id: Mapped[int] = mapped_column(ForeignKey("responses.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    entered_by: Mapped[int] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """Every message the bot sends, written in the transaction that caused it; delivered later."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|sending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(50), default="")  # reply|announce|remind|escalate|...
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class InboundMessage(Base):
    """Every message received; (platform, message_id) is unique: the last line of dedup."""

    __tablename__ = "inbound_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(200))
    sender_id: Mapped[str] = mapped_column(String(100))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    text: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (UniqueConstraint("platform", "message_id", name="uq_inbound"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    actor_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    action: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OccurrenceClaim(Base):
    """A scheduled event (schedule, period, kind, due time), claimed once across instances."""

    __tablename__ = "occurrence_claims"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    schedule_key: Mapped[str] = mapped_column(String(50))
    period: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(30))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    instance: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), default="done")  # done | skipped_late


class NudgeLog(Base):
    """One nudge (reminder) sent to one member: the source of truth for per-day/per-week caps."""

    __tablename__ = "nudge_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_nudge_member_at", "member_id", "at"),)


class LocalChatLine(Base):
    """The transcript of the built-in local chat (what members typed and what the bot said)."""

    __tablename__ = "local_chat"
    seq: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(200))  # members' lines: their local message id
    sender_id: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    __table_args__ = (
        Index("ix_local_chat_conv_seq", "conversation_id", "seq"),
        UniqueConstraint("conversation_id", "message_id", name="uq_local_chat_message"),
    )
