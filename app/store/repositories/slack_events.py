"""Queries on handled Slack event ids (Slack redelivers events; each must be handled once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.store.models import SlackEvent
from app.store.types import utc_now
from app.store.upsert import dialect_insert


def slack_event_seen(session: Session, event_id: str) -> bool:
    """Record the event id; True if it was already recorded (a retry: skip it), False the first time."""
    statement = (
        dialect_insert(session, SlackEvent)
        .values(event_id=event_id, received_at=utc_now())
        .on_conflict_do_nothing(index_elements=[SlackEvent.event_id])
        .returning(SlackEvent.event_id)
    )
    return session.scalar(statement) is None


def forget_slack_events_before(session: Session, cutoff: datetime) -> int:
    """Delete event ids recorded before `cutoff` (Slack stops retrying after minutes); returns how many."""
    result = session.execute(delete(SlackEvent).where(SlackEvent.received_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
