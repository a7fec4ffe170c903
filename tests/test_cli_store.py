"""`trainwreck db`, `token` and `rediagnose` as an operator runs them, on the test store."""

from __future__ import annotations

from pathlib import Path

import pytest
from server_support import oom_log
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.cli import main
from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.services.auth import resolve_scope
from app.services.ingest import IngestMeta, ingest_and_commit
from app.store.models import ApiToken, DiagnosisRecord


@pytest.fixture(autouse=True)
def store_in_environment(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRAINWRECK_DATABASE_URL", store_url)


def test_db_commands_move_the_schema_down_and_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    assert "(newest)" in capsys.readouterr().out

    assert main(["db", "downgrade", "base"]) == 0
    assert "empty store" in capsys.readouterr().out

    assert main(["db", "upgrade"]) == 0
    assert "(newest)" in capsys.readouterr().out


def test_an_unknown_revision_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "downgrade", "no-such-revision"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("trainwreck: ") and error.count("\n") == 1


def test_token_create_prints_the_secret_once_and_it_works(
    capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session], store_settings: Settings
) -> None:
    assert main(["token", "create", "--team", "vision", "--label", "ci"]) == 0
    output = capsys.readouterr()
    secret = output.out.strip()

    assert secret.startswith("tw_") and "\n" not in secret
    assert "shown only this once" in output.err
    with session_factory() as session:
        assert resolve_scope(session, token=secret, settings=store_settings).team == "vision"
        assert secret not in {token.token_sha256 for token in session.scalars(select(ApiToken))}


def test_token_list_and_revoke(capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session]) -> None:
    main(["token", "create", "--team", "vision"])
    main(["token", "create", "--team", "nlp", "--label", "slack bot"])
    capsys.readouterr()

    assert main(["token", "list"]) == 0
    table = capsys.readouterr().out
    assert "vision" in table and "slack bot" in table and table.count("active") == 2

    assert main(["token", "revoke", "1"]) == 0
    assert "revoked token 1" in capsys.readouterr().out
    assert main(["token", "revoke", "1"]) == 2
    with session_factory() as session:
        assert [token.revoked_at is None for token in session.scalars(select(ApiToken).order_by(ApiToken.id))] == [
            False,
            True,
        ]


def test_token_create_refuses_a_bad_team_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "create", "--team", "two words"]) == 2
    assert "invalid team name" in capsys.readouterr().err


def test_rediagnose_reruns_stored_logs_and_names_the_signature_version(
    capsys: pytest.CaptureFixture[str],
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.log"
    path.write_bytes(oom_log())
    ingest_and_commit(session_factory, log_path=path, meta=IngestMeta(), diagnoser=diagnoser, settings=store_settings)

    assert main(["rediagnose", "--since", "2020-01-01"]) == 0
    summary = capsys.readouterr().out

    with session_factory() as session:
        record = session.scalars(select(DiagnosisRecord)).one()
        assert record.diagnosed_at > record.received_at
    assert f"re-diagnosed 1 logs with signature set {record.signature_set_version}" in summary


def test_rediagnose_needs_all_or_since(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rediagnose"]) == 2
    assert main(["rediagnose", "--since", "last tuesday"]) == 2
    assert main(["rediagnose", "--all"]) == 0


def test_rediagnose_dry_run_lists_what_would_change_and_rewrites_nothing(
    capsys: pytest.CaptureFixture[str],
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.log"
    path.write_bytes(oom_log())
    created = ingest_and_commit(session_factory, log_path=path, meta=IngestMeta(team="vision"), diagnoser=diagnoser,
                                settings=store_settings)
    with session_factory.begin() as session:  # as if an older signature set had called it something else
        record = session.get(DiagnosisRecord, created.diagnosis_id)
        assert record is not None
        record.result = {**record.result, "category": "host_oom", "stage": "load"}
        before = record.diagnosed_at

    assert main(["rediagnose", "--all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"diagnosis {created.diagnosis_id} (vision): category host_oom → gpu_oom" in out
    assert f"diagnosis {created.diagnosis_id} (vision): stage load → mid_run" in out
    assert "1 logs read, 1 would change, 0 failed; nothing was rewritten" in out
    with session_factory() as session:
        record = session.get(DiagnosisRecord, created.diagnosis_id)
        assert record is not None and record.result["category"] == "host_oom" and record.diagnosed_at == before


def test_export_corpus_round_trips_through_eval(
    capsys: pytest.CaptureFixture[str],
    session_factory: sessionmaker[Session],
    diagnoser: Diagnoser,
    store_settings: Settings,
    tmp_path: Path,
) -> None:
    from app.services.feedback import record_feedback

    ids = []
    for job in ("x1", "x2", "x3"):
        path = tmp_path / f"{job}.log"
        path.write_bytes(oom_log(job=job))
        ids.append(ingest_and_commit(session_factory, log_path=path, meta=IngestMeta(team="vision"),
                                     diagnoser=diagnoser, settings=store_settings).diagnosis_id)
    with session_factory.begin() as session:
        record_feedback(session, diagnosis_id=ids[0], visible_team=None, verdict="right", category=None,
                        parameter=None, author="ana", source="api")
        record_feedback(session, diagnosis_id=ids[1], visible_team=None, verdict="wrong", category="host_oom",
                        parameter="dataloader_num_workers", author="bo", source="web")
    out = tmp_path / "corpus"

    assert main(["export-corpus", "--team", "vision", str(out)]) == 0
    assert "wrote 2 labelled logs of team vision" in capsys.readouterr().out
    assert sorted(path.name for path in out.iterdir()) == sorted([f"{ids[0]}.log", f"{ids[1]}.log", "labels.jsonl"])
    assert main(["eval", str(out)]) == 0
    scored = capsys.readouterr().out
    assert "category   50.0%  (1/2)" in scored  # the corrected one is a miss the team now sees
    assert main(["export-corpus", "--team", "vision", str(out)]) == 2  # never over an earlier corpus


def test_an_organisation_token_is_created_read_only_and_listed(
    capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session], store_settings: Settings
) -> None:
    assert main(["token", "create", "--org"]) == 2  # must say --read-only
    assert main(["token", "create", "--org", "--read-only", "--team", "vision"]) == 2
    capsys.readouterr()
    assert main(["token", "create", "--org", "--read-only", "--label", "lead"]) == 0
    output = capsys.readouterr()
    assert "for every team, read-only" in output.err
    with session_factory() as session:
        scope = resolve_scope(session, token=output.out.strip(), settings=store_settings)
    assert scope.team is None and scope.read_only
    assert main(["token", "list"]) == 0
    assert "(all, read-only)" in capsys.readouterr().out
