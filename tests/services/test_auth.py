"""Team scope: auth off, auto on loopback, auto once tokens exist, auth on, bad headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import AuthenticationError, InvalidRequestError, NotFoundError
from app.services import tokens
from app.services.auth import TeamScope, auth_required, bearer_token, is_loopback, resolve_scope


def test_auth_off_sees_every_team_even_with_tokens(session: Session, make_settings: Callable[..., Settings]) -> None:
    tokens.create_token(session, team_name="vision")

    assert resolve_scope(session, token=None, settings=make_settings(auth="off")) == TeamScope(team=None)


def test_auto_on_loopback_is_open_until_a_token_exists(
    session: Session, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(auth="auto", host="127.0.0.1")
    assert resolve_scope(session, token=None, settings=settings).all_teams

    created = tokens.create_token(session, team_name="vision")

    with pytest.raises(AuthenticationError):
        resolve_scope(session, token=None, settings=settings)
    assert resolve_scope(session, token=created.secret, settings=settings) == TeamScope(team="vision")


def test_auto_off_loopback_and_on_always_require_a_token(
    session: Session, make_settings: Callable[..., Settings]
) -> None:
    assert auth_required(session, make_settings(auth="auto", host="0.0.0.0"))
    assert auth_required(session, make_settings(auth="on"))
    assert not auth_required(session, make_settings(auth="auto", host="::1"))


def test_unknown_and_revoked_tokens_are_refused(session: Session, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    created = tokens.create_token(session, team_name="vision")
    tokens.revoke_token(session, str(created.id))

    for token in ("tw_not-a-token", created.secret):
        with pytest.raises(AuthenticationError):
            resolve_scope(session, token=token, settings=settings)


def test_tokens_are_stored_only_as_hashes(session: Session) -> None:
    created = tokens.create_token(session, team_name="vision", label="ci")

    (stored,) = tokens.list_tokens(session)
    assert stored.token_sha256 == tokens.token_sha256(created.secret)
    assert created.secret not in {stored.prefix, stored.token_sha256, stored.label}
    assert created.secret.startswith(stored.prefix)


def test_revoking_needs_exactly_one_match(session: Session) -> None:
    first = tokens.create_token(session, team_name="vision")
    tokens.create_token(session, team_name="vision")

    with pytest.raises(InvalidRequestError):
        tokens.revoke_token(session, "tw_")
    with pytest.raises(NotFoundError):
        tokens.revoke_token(session, "tw_nothing")
    assert tokens.revoke_token(session, first.prefix).id == first.id


def test_a_bad_team_name_is_refused(session: Session) -> None:
    with pytest.raises(InvalidRequestError):
        tokens.create_token(session, team_name="no spaces/allowed")


@pytest.mark.parametrize(
    ("header", "token"), [(None, None), ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER x.y", "x.y")]
)
def test_bearer_headers_give_their_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc"])
def test_other_authorization_headers_are_refused(header: str) -> None:
    with pytest.raises(AuthenticationError):
        bearer_token(header)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
