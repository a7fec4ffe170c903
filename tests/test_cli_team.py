"""`trainwreck team webhook` as an operator runs it, on the test store."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.cli import main
from app.store.repositories.webhooks import get_slack_webhook_url

HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"


@pytest.fixture(autouse=True)
def store_in_environment(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINWRECK_DATABASE_URL", store_url)


def test_team_webhook_sets_and_clears_the_url(
    session_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["team", "webhook", "--team", "vision", HOOK]) == 0
    assert "posted to its Slack webhook" in capsys.readouterr().out
    with session_factory() as session:
        assert get_slack_webhook_url(session, "vision") == HOOK

    assert main(["team", "webhook", "--team", "vision", "--clear"]) == 0
    assert "no longer posted" in capsys.readouterr().out
    with session_factory() as session:
        assert get_slack_webhook_url(session, "vision") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param([], "give the webhook URL, or --clear", id="neither"),
        pytest.param([HOOK, "--clear"], "give the webhook URL, or --clear", id="both"),
        pytest.param(["http://127.0.0.1:9/x"], "not a Slack incoming-webhook URL", id="not slack"),
    ],
)
def test_team_webhook_refuses_bad_usage_with_one_line(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["team", "webhook", "--team", "vision", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("trainwreck: ")
    assert message in error
    assert len(error.splitlines()) == 1
