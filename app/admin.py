"""What the administrative commands do: tokens, schema revisions, re-diagnosis (cli.py only parses and prints)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from app.config import Settings
from app.diagnoser import build_diagnoser
from app.services import tokens
from app.services.rediagnose import PreviewedChange, RediagnosisReport, preview_rediagnosis, rediagnose_stored
from app.services.tokens import CreatedToken
from app.store import migrate
from app.store.access import open_store


def create_token(settings: Settings, *, team: str | None, label: str | None, read_only: bool = False) -> CreatedToken:
    """A new API token for the team; its secret is in the result and nowhere else."""
    with open_store(settings) as session_factory, session_factory.begin() as session:
        return tokens.create_token(session, team_name=team, label=label, read_only=read_only)


def revoke_token(settings: Settings, id_or_prefix: str) -> str:
    """Revoke one token by id or prefix; a line saying which."""
    with open_store(settings) as session_factory, session_factory.begin() as session:
        token = tokens.revoke_token(session, id_or_prefix)
        owner = f"team {token.team.name}" if token.team else "the organisation (read-only)"
        return f"revoked token {token.id} ({token.prefix}…) of {owner}"


def token_table(settings: Settings) -> str:
    """Every token as a table: id, team, prefix, label, created, status."""
    with open_store(settings) as session_factory, session_factory() as session:
        rows = [("ID", "TEAM", "PREFIX", "CREATED", "STATUS", "LABEL")]
        for token in tokens.list_tokens(session):
            status = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            created = f"{token.created_at:%Y-%m-%d %H:%M}"
            team = token.team.name if token.team else "(all, read-only)"
            rows.append((str(token.id), team, token.prefix, created, status, token.label or ""))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def describe_revision(settings: Settings) -> str:
    """The store's schema revision, and whether it is the newest."""
    url = settings.sqlalchemy_url
    current, head = migrate.current_revision(url), migrate.head_revision(url)
    if current is None:
        return f"(empty store; newest revision is {head})"
    return f"{current} (newest)" if current == head else f"{current} (behind: newest is {head})"


def preview_rediagnose(
    settings: Settings, *, since: datetime | None
) -> tuple[RediagnosisReport, list[PreviewedChange], str]:
    """What re-diagnosing the stored logs would change, without changing anything."""
    diagnoser = build_diagnoser(settings)
    with open_store(settings) as session_factory:
        report, changes = preview_rediagnosis(session_factory, diagnoser=diagnoser, settings=settings,
                                              received_since=since)
    return report, changes, diagnoser.version


def export_team_corpus(settings: Settings, *, team: str, since: datetime | None, out: Path) -> int:
    """The team's confirmed and corrected diagnoses as a labelled corpus in `out`; how many."""
    from app.services.corpus_export import export_corpus

    with open_store(settings) as session_factory, session_factory() as session:
        return export_corpus(session, team=team, since=since, out=out)


def rediagnose(
    settings: Settings, *, since: datetime | None, on_batch: Callable[[RediagnosisReport], None] | None = None
) -> tuple[RediagnosisReport, str]:
    """Re-diagnose stored logs with the current signatures; the report and the signature-set version."""
    diagnoser = build_diagnoser(settings)
    with open_store(settings) as session_factory:
        report = rediagnose_stored(
            session_factory, diagnoser=diagnoser, settings=settings, received_since=since, on_batch=on_batch
        )
    return report, diagnoser.version
