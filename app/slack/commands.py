"""The `/trainwreck` slash command: show a diagnosis, a team's week, or help."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.api.schemas import diagnosis_url
from app.diagnosis.model import Diagnosis
from app.slack.blocks import SlackMessage, diagnosis_message, help_message, notice_message, stats_message
from app.store.models import DiagnosisRecord
from app.store.repositories.diagnoses import DiagnosisFilters, get_diagnosis
from app.store.repositories.jobs import newest_diagnosis_of_job
from app.store.repositories.stats import count_diagnoses_by

STATS_DAYS = 7
LARGEST_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


def answer_command(
    session: Session, text: str, *, command: str, team: str, public_url: str, now: datetime
) -> SlackMessage:
    """The answer to `command text` typed in a channel of `team`."""
    words = text.split()
    if not words or words[0].lower() == "help":
        return help_message(command)
    if words[0].lower() == "stats" and len(words) == 1:
        filters = DiagnosisFilters(team=team, since=now - timedelta(days=STATS_DAYS))
        counts = dict(count_diagnoses_by(session, filters, group_by="category"))
        return stats_message(team, days=STATS_DAYS, counts=counts)
    if words[0].lower() == "job" and len(words) == 2:
        record = newest_diagnosis_of_job(session, words[1], visible_team=team)
    elif len(words) == 1:
        record = _find(session, words[0], team=team)
    else:
        return notice_message(f"I did not understand `{command} {text}`. Try `{command} help`.")
    if record is None:
        return notice_message(f"Team *{team}* has no diagnosis `{words[-1]}` and no job `{words[-1]}`.")
    return diagnosis_message(Diagnosis.from_dict(record.result), url=diagnosis_url(public_url, record.id))


def _find(session: Session, word: str, *, team: str) -> DiagnosisRecord | None:
    """A diagnosis id first (`#42` or `42`), then a job id."""
    number = word.removeprefix("#")
    if number.isdigit() and int(number) <= LARGEST_ID:
        record = get_diagnosis(session, int(number), visible_team=team)
        if record is not None or word.startswith("#"):
            return record
    return newest_diagnosis_of_job(session, word, visible_team=team)
