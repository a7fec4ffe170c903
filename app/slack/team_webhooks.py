"""Setting a team's Slack incoming webhook: the checks, for the API and the command line alike."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidRequestError
from app.services.teams import checked_team_name
from app.slack.webhooks import webhook_url_allowed
from app.store.access import open_store
from app.store.repositories.webhooks import set_slack_webhook_url

LONGEST_URL = 2000


def set_team_webhook(session: Session, team: str, *, url: str | None, settings: Settings) -> None:
    """Point the team's new-diagnosis posts at `url` (None: stop posting); InvalidRequestError for a bad URL."""
    checked_team_name(team)
    if url is not None:
        url = url.strip()
        if len(url) > LONGEST_URL or not webhook_url_allowed(url, settings.slack_webhook_url_prefixes):
            allowed = ", ".join(settings.slack_webhook_url_prefixes) or "(none configured)"
            raise InvalidRequestError(f"not a Slack incoming-webhook URL: it must start with one of {allowed}")
    set_slack_webhook_url(session, team, url)


def configure_team_webhook(settings: Settings, *, team: str, url: str | None) -> str:
    """`trainwreck team webhook`: set or clear the webhook in the configured store; a line saying what changed."""
    with open_store(settings) as session_factory, session_factory.begin() as session:
        set_team_webhook(session, team, url=url, settings=settings)
    if url is None:
        return f"team {team}: new diagnoses are no longer posted to Slack"
    return f"team {team}: new diagnoses are posted to its Slack webhook"
