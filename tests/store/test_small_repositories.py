"""Teams, tokens, webhooks and Slack event ids."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.store.repositories import slack_events, teams, tokens, webhooks
from app.store.types import utc_now


def test_ensure_team_creates_once(session: Session) -> None:
    first = teams.ensure_team(session, "vision")
    again = teams.ensure_team(session, "vision")
    session.commit()

    assert first.id == again.id
    assert teams.list_team_names(session) == ["vision"]


def test_a_revoked_token_is_no_longer_active(session: Session) -> None:
    team = teams.ensure_team(session, "vision")
    token = tokens.add_token(session, team=team, prefix="tw_abcdefgh", token_sha256="a" * 64, label=None)
    session.commit()
    assert tokens.any_active_token(session)
    assert tokens.find_active_token(session, "a" * 64) is not None

    tokens.revoke_token(session, token, at=utc_now())
    session.commit()

    assert tokens.find_active_token(session, "a" * 64) is None
    assert not tokens.any_active_token(session)
    assert [listed.id for listed in tokens.list_tokens(session)] == [token.id]


def test_tokens_are_found_by_id_or_prefix(session: Session) -> None:
    team = teams.ensure_team(session, "vision")
    first = tokens.add_token(session, team=team, prefix="tw_aaaa1111", token_sha256="1" * 64, label=None)
    second = tokens.add_token(session, team=team, prefix="tw_aaab2222", token_sha256="2" * 64, label="ci")
    session.commit()

    assert [token.id for token in tokens.find_tokens(session, "tw_aaa")] == [first.id, second.id]
    assert [token.id for token in tokens.find_tokens(session, "tw_aaab")] == [second.id]
    assert [token.id for token in tokens.find_tokens(session, str(first.id))] == [first.id]
    assert tokens.find_tokens(session, "tw_%") == []


def test_slack_event_seen_reports_repeats(session: Session) -> None:
    assert slack_events.slack_event_seen(session, "Ev01") is False
    assert slack_events.slack_event_seen(session, "Ev01") is True
    assert slack_events.slack_event_seen(session, "Ev02") is False
    session.commit()

    assert slack_events.forget_slack_events_before(session, utc_now() + timedelta(seconds=1)) == 2
    assert slack_events.slack_event_seen(session, "Ev01") is False


def test_team_webhook_is_set_replaced_and_removed(session: Session) -> None:
    assert webhooks.get_slack_webhook_url(session, "vision") is None

    webhooks.set_slack_webhook_url(session, "vision", "https://hooks.slack.com/services/T/B/one")
    webhooks.set_slack_webhook_url(session, "vision", "https://hooks.slack.com/services/T/B/two")
    session.commit()
    assert webhooks.get_slack_webhook_url(session, "vision") == "https://hooks.slack.com/services/T/B/two"
    assert webhooks.list_slack_webhooks(session) == {"vision": "https://hooks.slack.com/services/T/B/two"}

    webhooks.set_slack_webhook_url(session, "vision", None)
    session.commit()
    assert webhooks.get_slack_webhook_url(session, "vision") is None
