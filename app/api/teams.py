"""PUT /api/v1/teams/{team}/webhook: where a team's new diagnoses are posted in Slack."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import SessionDep, SettingsDep, TeamScopeDep
from app.api.schemas import ErrorOut
from app.errors import ForbiddenError
from app.services.teams import TEAM_NAME_PATTERN
from app.slack.team_webhooks import LONGEST_URL, set_team_webhook

router = APIRouter(prefix="/teams", tags=["teams"])

TeamName = Annotated[str, PathParam(pattern=TEAM_NAME_PATTERN)]


class WebhookIn(BaseModel):
    """The Slack incoming-webhook URL, or null to stop posting."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(max_length=LONGEST_URL, examples=["https://hooks.slack.com/services/T000/B000/XXXX"])


class WebhookOut(BaseModel):
    team: str
    url: str | None


@router.put(
    "/{team}/webhook",
    response_model=WebhookOut,
    responses={status: {"model": ErrorOut} for status in (400, 401, 403, 422)},
    summary="Set or clear the team's Slack webhook",
)
def put_webhook(
    team: TeamName, body: WebhookIn, session: SessionDep, scope: TeamScopeDep, settings: SettingsDep
) -> WebhookOut:
    """Every new diagnosis of the team is posted to this Slack incoming webhook; `url: null` stops it."""
    if not scope.can_see(team):
        raise ForbiddenError(f"this token belongs to another team than {team}")
    set_team_webhook(session, team, url=body.url, settings=settings)
    return WebhookOut(team=team, url=body.url.strip() if body.url else None)
