"""On PostgreSQL the service splits a block of lines into the terms search matches: the same terms as the
migrations' SQL function, which filled the rows stored before the split moved out of the database. On SQLite the
rows indexed before the index dropped its positions are found after the upgrade, and after a downgrade."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.store import migrate
from app.store.models import DiagnosisRecord, LogText, Team
from app.store.repositories.log_text import first_matches, insert_blocks, search_terms
from app.store.session import create_db_engine, create_session_factory
from app.store.types import utc_now

TEXTS = [
    "[INFO:swift] args: model=Qwen/Qwen2.5-7B-Instruct dataset='data/train-set-3.jsonl' lr=1e-4",
    'File "/opt/venv/lib/python3.11/site-packages/transformers/trainer.py", line 3518, in training_step',
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.91 GiB (GPU 2; 79.15 GiB total)",
    "{'loss': 2.0123, 'grad_norm': 0.512, 'learning_rate': 9.9e-06, 'epoch': 0.01}\nTrain:  5%|▍| 50/1000",
    "数据集 加载失败: KeyError 'messages' — Ärger mit ÜBER-größen <tag>|pipe;semi,comma` back`tick",
    "x" * 250 + " short " + "y" * 199 + "/" + "z" * 201,
    "   \t  ",
    "",
]


def _add(session: Session, number: int, team_id: int | None = None) -> int:
    team_id = team_id or session.scalar(select(Team.id)) or session.scalar(
        text("INSERT INTO teams (name, created_at) VALUES ('t', CURRENT_TIMESTAMP) RETURNING id"))
    record = DiagnosisRecord(
        team_id=team_id, source="api", category="gpu_oom", stage="mid_run", fingerprint=f"f{number}", title="t",
        confidence=0.5, signature_set_version="v", content_sha256=f"{number:064d}", log_bytes=1, search_text="",
        result={}, received_at=utc_now(), diagnosed_at=utc_now())
    session.add(record)
    session.flush()
    return record.id


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_service_splits_text_as_the_sql_function_does(session: Session) -> None:
    for sample in TEXTS:
        in_database = session.scalar(text("SELECT tsvector_to_array(trainwreck_log_terms(:body))"), {"body": sample})
        assert sorted(search_terms(sample)) == sorted(in_database), sample


@pytest.mark.postgres
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_blocks_stored_together_keep_each_its_own_text_line_and_terms(session: Session) -> None:
    """A log's blocks go to PostgreSQL in one statement, their terms joined: each row gets its own, also a
    block with none."""
    first, second = _add(session, 11), _add(session, 12)
    blocks = [(first if index % 2 else second, 10 * index + 1, sample) for index, sample in enumerate(TEXTS)]
    insert_blocks(session, blocks)
    stored = session.execute(text("SELECT diagnosis_id, first_line, text, tsvector_to_array(search_terms) "
                                  "FROM log_text WHERE diagnosis_id IN (:a, :b) ORDER BY first_line"),
                             {"a": first, "b": second}).all()
    assert [(row[0], row[1], row[2]) for row in stored] == blocks
    assert [sorted(row[3]) for row in stored] == [sorted(search_terms(sample)) for sample in TEXTS]


@pytest.mark.postgres
@pytest.mark.parametrize("empty_store_url", ["postgresql"], indirect=True)
def test_rows_stored_before_the_terms_column_are_found_after_the_upgrade(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url, "fb267ea0273b")
    engine = create_db_engine(empty_store_url)
    try:
        with create_session_factory(engine).begin() as session:
            old = _add(session, 1)
            session.execute(text("INSERT INTO log_text (diagnosis_id, first_line, text) VALUES (:d, 7, :t)"),
                            {"d": old, "t": TEXTS[0]})
        migrate.upgrade(empty_store_url)
        with create_session_factory(engine).begin() as session:
            new = _add(session, 2)
            insert_blocks(session, [(new, 3, TEXTS[0])])
        with create_session_factory(engine)() as session:
            found = first_matches(session, "train-set-3.jsonl Qwen2.5", [old, new])
            assert {key: match.line for key, match in found.items()} == {old: 7, new: 3}
            assert session.scalar(select(LogText.id).where(LogText.diagnosis_id == old)) is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_store_url", ["sqlite"], indirect=True)
def test_sqlite_rows_indexed_with_positions_are_found_after_the_upgrade_and_back(empty_store_url: str) -> None:
    migrate.upgrade(empty_store_url, "7c3e5b9d1a20")
    engine = create_db_engine(empty_store_url)
    try:
        with create_session_factory(engine).begin() as session:
            team_id = session.scalar(text("INSERT INTO teams (name, created_at) VALUES ('t', CURRENT_TIMESTAMP) "
                                          "RETURNING id"))
            old = _add(session, 1, team_id)
            for first_line, sample in ((7, TEXTS[0]), (9, TEXTS[2])):  # as that revision stored them
                session.execute(text("INSERT INTO log_text (diagnosis_id, first_line, text) VALUES (:d, :l, :t)"),
                                {"d": old, "l": first_line, "t": sample})
        for revision in ("head", "7c3e5b9d1a20", "head"):
            if revision == "head":
                migrate.upgrade(empty_store_url)
            else:
                migrate.downgrade(empty_store_url, revision)
            with create_session_factory(engine)() as session:
                index = session.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'log_text_fts'"))
                assert ("detail=none" in index) == (revision == "head")
                found = first_matches(session, "train-set-3.jsonl Qwen2.5", [old])
                assert {key: match.line for key, match in found.items()} == {old: 7}, revision
                assert first_matches(session, "OutOfMemoryError", [old])[old].line == 9
                assert first_matches(session, "Qwen2.5 OutOfMemoryError", [old]) == {}
    finally:
        engine.dispose()


@pytest.mark.parametrize("empty_store_url", ["sqlite"], indirect=True)
def test_sqlite_indexes_the_rows_it_stores_in_one_statement_and_by_trigger_below_that_revision(
    empty_store_url: str,
) -> None:
    """At head the rows a log stores are indexed by the statement that stores them (no trigger per row); one
    revision down the trigger is back. FTS5's integrity check with rank 1 compares the index with log_text
    itself, so a row left out of the index, or put in twice, fails it."""
    migrate.upgrade(empty_store_url)
    engine = create_db_engine(empty_store_url)

    def check_index(session: Session) -> None:
        session.execute(text("INSERT INTO log_text_fts (log_text_fts, rank) VALUES ('integrity-check', 1)"))

    def trigger() -> str | None:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                          "AND name = 'log_text_fts_insert'"))

    try:
        assert trigger() is None
        with create_session_factory(engine).begin() as session:
            first, second = _add(session, 1), _add(session, 2)
            insert_blocks(session, [(first, 7, TEXTS[0]), (first, 9, TEXTS[2])])
            insert_blocks(session, [(second, 1, TEXTS[2]), (second, 40, TEXTS[4])])
            check_index(session)
        migrate.downgrade(empty_store_url, "3a9d4e6c2b71")
        assert trigger() == "log_text_fts_insert"
        with create_session_factory(engine).begin() as session:
            third = _add(session, 3)
            session.execute(text("INSERT INTO log_text (diagnosis_id, first_line, text) VALUES (:d, 5, :t)"),
                            {"d": third, "t": TEXTS[0]})
            check_index(session)
        migrate.upgrade(empty_store_url)
        with create_session_factory(engine).begin() as session:
            found = first_matches(session, "train-set-3.jsonl", [first, second, third])
            assert {key: match.line for key, match in found.items()} == {first: 7, third: 5}
            assert first_matches(session, "KeyError messages", [second])[second].line == 40
            session.execute(text("DELETE FROM log_text WHERE diagnosis_id = :d"), {"d": first})
            check_index(session)
            assert first_matches(session, "OutOfMemoryError", [first, second]).keys() == {second}
    finally:
        engine.dispose()


def test_a_search_splits_its_words_where_stored_text_is_split(session: Session) -> None:
    """Characters Python counts as spaces (the ASCII information separators, NEL, the no-break space) split a
    search as they split the stored text, so a search that holds one finds the line."""
    diagnosis_id = _add(session, 3)
    insert_blocks(session, [(diagnosis_id, 5, "x a\xa0b\x1cc\x85d y")])
    for search in ("a\xa0b", "b\x1cc", "a\xa0b\x1cc\x85d", "c\x85d y"):
        assert first_matches(session, search, [diagnosis_id])[diagnosis_id].line == 5, repr(search)
