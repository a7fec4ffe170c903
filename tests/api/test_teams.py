"""PUT /api/v1/teams/{team}/webhook: setting and clearing a team's Slack webhook."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.services.tokens import create_token
from app.store.repositories.webhooks import get_slack_webhook_url

HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"


def webhook_of(session_factory: sessionmaker[Session], team: str) -> str | None:
    with session_factory() as session:
        return get_slack_webhook_url(session, team)


def test_a_team_sets_and_clears_its_webhook(api_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    set_answer = api_client.put("/api/v1/teams/vision/webhook", json={"url": HOOK})
    kept = webhook_of(session_factory, "vision")
    clear_answer = api_client.put("/api/v1/teams/vision/webhook", json={"url": None})

    assert (set_answer.status_code, set_answer.json()) == (200, {"team": "vision", "url": HOOK})
    assert kept == HOOK
    assert clear_answer.json() == {"team": "vision", "url": None}
    assert webhook_of(session_factory, "vision") is None


def test_only_slack_webhook_urls_are_taken(api_client: TestClient, session_factory: sessionmaker[Session]) -> None:
    for url in ("http://169.254.169.254/latest/meta-data", "https://hooks.slack.com.evil.example/x", "file:///etc"):
        response = api_client.put("/api/v1/teams/vision/webhook", json={"url": url})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"
    assert webhook_of(session_factory, "vision") is None


def test_a_token_sets_only_its_own_teams_webhook(
    api_client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        token = create_token(session, team_name="nlp").secret
    headers = {"Authorization": f"Bearer {token}"}

    other = api_client.put("/api/v1/teams/vision/webhook", json={"url": HOOK}, headers=headers)
    own = api_client.put("/api/v1/teams/nlp/webhook", json={"url": HOOK}, headers=headers)
    anonymous = api_client.put("/api/v1/teams/nlp/webhook", json={"url": None})

    assert other.status_code == 403
    assert own.status_code == 200
    assert anonymous.status_code == 401
    assert webhook_of(session_factory, "vision") is None


def test_a_malformed_request_is_refused(api_client: TestClient) -> None:
    assert api_client.put("/api/v1/teams/vision/webhook", json={}).status_code == 422
    assert api_client.put("/api/v1/teams/no%20spaces/webhook", json={"url": HOOK}).status_code == 422


def test_a_body_larger_than_any_json_route_takes_is_refused_unread(api_client: TestClient) -> None:
    declared = api_client.put("/api/v1/teams/vision/webhook", content=b"{" + b" " * (2 << 20) + b"}",
                              headers={"content-type": "application/json", "authorization": "Bearer wrong"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "too_large"


def test_a_streamed_body_over_the_cap_is_cut_off(api_client: TestClient) -> None:
    def chunks():  # no Content-Length: the cap counts what arrives
        for _ in range(4):
            yield b" " * (1 << 20)

    response = api_client.put("/api/v1/teams/vision/webhook", content=chunks(),
                              headers={"content-type": "application/json"})
    assert response.status_code == 413
