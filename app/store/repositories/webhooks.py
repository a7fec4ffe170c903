"""Queries on team webhook settings: where new diagnoses of a team are posted."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.store.models import Team, TeamWebhook
from app.store.repositories.teams import ensure_team
from app.store.types import utc_now
from app.store.upsert import dialect_insert


def get_slack_webhook_url(session: Session, team_name: str) -> str | None:
    """The Slack incoming-webhook URL of this team, if it set one."""
    return session.scalar(select(TeamWebhook.slack_webhook_url).join(Team).where(Team.name == team_name))


def set_slack_webhook_url(session: Session, team_name: str, url: str | None) -> None:
    """Set (or with None remove) the team's Slack incoming-webhook URL."""
    team = ensure_team(session, team_name)
    if url is None:
        session.execute(delete(TeamWebhook).where(TeamWebhook.team_id == team.id))
        return
    insert = dialect_insert(session, TeamWebhook).values(team_id=team.id, slack_webhook_url=url, updated_at=utc_now())
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[TeamWebhook.team_id],
            set_={"slack_webhook_url": url, "updated_at": insert.excluded.updated_at},
        )
    )


def list_slack_webhooks(session: Session) -> dict[str, str]:
    """Team name → Slack incoming-webhook URL, for every team that set one."""
    rows = session.execute(select(Team.name, TeamWebhook.slack_webhook_url).join(Team).order_by(Team.name))
    return {name: url for name, url in rows}
