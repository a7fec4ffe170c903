"""Log search benchmark (not a test): how long a search takes over many stored logs on PostgreSQL, through
the same repository calls as the list page and the API (the diagnoses matching a word, newest first, one
page, with the matching line of each), next to the same list without a search.

    .venv/bin/python bench/bench_search.py [--logs 100000] [--lines 60]

A fresh database on the server named by TRAINWRECK_BENCH_POSTGRES_URL is migrated, filled with `--logs`
diagnoses of two teams whose searchable lines (head and tail blocks) hold a model name, a dataset path and
an error, then dropped afterwards. Prints the median and worst of repeated searches for a rare word, a word
in one log of ten, a word in every log, and two words together.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from app.store import migrate
from app.store.models import DiagnosisRecord, Team
from app.store.repositories.diagnoses import DiagnosisFilters
from app.store.repositories.log_text import first_matches, insert_blocks
from app.store.repositories.page_views import list_summaries
from app.store.session import create_db_engine, create_session_factory

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MODELS = ["Qwen/Qwen2.5-7B-Instruct", "meta-llama/Llama-3.1-8B", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen3-30B-A3B",
          "deepseek-ai/DeepSeek-V2-Lite", "google/gemma-2-9b"]
ERRORS = ["torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
          "KeyError: 'messages'", "RuntimeError: NCCL communicator was aborted on rank 3",
          "OSError: [Errno 28] No space left on device"]


def _log_lines(number: int, lines: int, rng: random.Random) -> str:
    model = MODELS[number % len(MODELS)]
    head = [f"[INFO:swift] args: model={model} dataset=/data/sft/set-{number % 10}.jsonl run=run-{number}",
            f"[INFO:swift] world_size=8 per_device_train_batch_size={1 + number % 4}"]
    head += [f"{{'loss': {rng.uniform(0.5, 3):.4f}, 'grad_norm': {rng.uniform(0, 2):.3f}, "
             f"'global_step/max_steps': '{step}/2000'}}" for step in range(1, lines - 3)]
    if number % 1000 == 7:
        head.append("ValueError: the zebrafish tokenizer is not found")  # the rare word
    head.append(ERRORS[number % len(ERRORS)])
    return "\n".join(head)


def _fill(url: str, logs: int, lines: int) -> None:
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    with factory.begin() as session:
        session.execute(insert(Team), [{"id": 1, "name": "vision"}, {"id": 2, "name": "nlp"}])
    batch = 2000
    for start in range(0, logs, batch):
        numbers = range(start, min(start + batch, logs))
        with factory.begin() as session:
            session.execute(insert(DiagnosisRecord), [{
                "id": number + 1, "team_id": 1 + number % 2, "source": "api", "category": "gpu_oom", "stage": "mid_run",
                "fingerprint": f"fp-{number % 50}", "title": "The GPU ran out of memory", "confidence": 0.9,
                "signature_set_version": "bench", "content_sha256": uuid.uuid4().hex, "log_bytes": 4000,
                "search_text": "the gpu ran out of memory", "result": {},
                "received_at": now - timedelta(minutes=number), "diagnosed_at": now,
            } for number in numbers])
            insert_blocks(session, [(number + 1, 1, _log_lines(number, lines, rng)) for number in numbers])
    engine.dispose()


def _timed(url: str, words: str, *, team: str | None, repeats: int = 7) -> tuple[float, float, int]:
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    timings = []
    total = 0
    for _ in range(repeats):
        started = time.perf_counter()
        with factory() as session:
            page = list_summaries(session, DiagnosisFilters(visible_team=team, text=words or None), fingerprint=None,
                                  limit=50, offset=0)
            if words:
                first_matches(session, words, [row.id for row in page.items])
        timings.append(time.perf_counter() - started)
        total = page.total
    engine.dispose()
    return statistics.median(timings), max(timings), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=60, help="searchable lines per log")
    args = parser.parse_args()
    server = make_url(os.environ.get("TRAINWRECK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    name = f"trainwreck_search_{uuid.uuid4().hex[:8]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        started = time.perf_counter()
        _fill(url, args.logs, args.lines)
        print(f"{args.logs:,} logs of {args.lines} searchable lines stored in {time.perf_counter() - started:.0f} s")
        print(f"{'search':<34} {'team':<8} {'matches':>8} {'median':>9} {'worst':>9}")
        for words, label in (("", "no search (the list alone)"), ("zebrafish", "a rare word (1 in 1000)"),
                             ("set-3.jsonl", "a path in 1 log of 10"), ("Qwen2.5-7B-Instruct", "a model in 1 of 6"),
                             ("memory", "a word in 1 of 4"), ("grad_norm", "a word in every log"),
                             ("Qwen3 space", "two words")):
            for team in (None, "vision"):
                median, worst, total = _timed(url, words, team=team)
                print(f"{label:<34} {team or 'all':<8} {total:>8,} {median * 1000:>7.0f}ms {worst * 1000:>7.0f}ms")
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
