"""Web page benchmark (not a test): server time of every page on a store holding 10,000 diagnoses.

    .venv/bin/python bench/bench_web.py [--diagnoses 10000] [--repeat 15] [--postgres]

Seeds a fresh store (SQLite in a temporary folder; with --postgres a fresh database on the server named
by TRAINWRECK_BENCH_POSTGRES_URL, dropped afterwards) with diagnoses made by the real engine from a few
realistic crash logs, spread over five teams and 90 days, each with its stored log. Then requests every
page through the ASGI interface in-process (no network) and prints the median and worst server time
per page against the 200 ms budget.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from app.config import Settings  # noqa: E402
from app.diagnosis.engine import Diagnoser  # noqa: E402
from app.diagnosis.model import Diagnosis  # noqa: E402
from app.diagnosis.signatures import load_signature_set  # noqa: E402
from app.main import create_app  # noqa: E402
from app.store.log_blobs import compressed_log, write_log  # noqa: E402
from app.store.migrate import upgrade  # noqa: E402
from app.store.repositories import diagnoses, failure_kinds, teams  # noqa: E402
from app.store.session import create_db_engine, create_session_factory  # noqa: E402
from app.store.types import utc_now  # noqa: E402
from bench.bench_api import DEFAULT_POSTGRES_URL, fresh_postgres_database  # noqa: E402
from tests.web.sample_logs import (  # noqa: E402
    MORE_FAILURES,
    crash_log,
    gpu_oom_log,
    missing_field_log,
    nan_loss_log,
    nccl_timeout_log,
)

BUDGET_MS = 200.0
TEAMS = ("vision", "nlp", "speech", "robotics", "infra")


def template_logs() -> list[bytes]:
    """The crash logs the seeded diagnoses are made from."""
    logs = [gpu_oom_log(step=step) for step in (120, 853, 1500)]
    logs += [nan_loss_log(), nccl_timeout_log(), missing_field_log()]
    logs += [crash_log(lines, step=700) for lines in MORE_FAILURES.values()]
    return logs


def seed(url: str, count: int) -> int:
    """Store `count` diagnoses with their logs; returns the id of one in the middle."""
    diagnoser = Diagnoser(load_signature_set())
    templates = [(log, diagnoser.diagnose(log)) for log in template_logs()]
    rng = random.Random(7)
    now = utc_now()
    engine = create_db_engine(url)
    session_factory = create_session_factory(engine)
    with session_factory.begin() as session:
        team_ids = {name: teams.ensure_team(session, name).id for name in TEAMS}
        for index in range(count):
            log, template = rng.choice(templates)
            diagnosis = Diagnosis.from_dict(template.to_dict())
            if diagnosis.step is not None and diagnosis.total_steps:
                diagnosis.step = rng.randrange(1, diagnosis.total_steps)
            team = rng.choice(TEAMS)
            received = now - timedelta(minutes=rng.randrange(90 * 24 * 60))
            job_id = f"{team}-run-{index:05d}"
            diagnosis_id = diagnoses.insert_if_new(
                session,
                {
                    "team_id": team_ids[team],
                    "job_id": job_id,
                    "source": "api",
                    "received_at": received,
                    "diagnosed_at": received,
                    "content_sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                    "log_bytes": len(log),
                    **diagnoses.result_columns(diagnosis, job_id=job_id),
                },
            )
            assert diagnosis_id is not None
            with compressed_log([log]) as stored_log:
                write_log(session, diagnosis_id, stored_log)
            failure_kinds.record_occurrence(
                session, team_id=team_ids[team], fingerprint=diagnosis.fingerprint, seen_at=received
            )
    engine.dispose()
    return count // 2


def pages(middle_id: int) -> list[tuple[str, str]]:
    """(name, path) of every page worth timing."""
    return [
        ("list", "/"),
        ("list, page 100", "/?page=100"),
        ("list, team + category", "/?team=nlp&category=gpu_oom"),
        ("list, date range", "/?since=2000-01-01&until=2100-01-01"),
        ("list, free text", "/?q=out+of+memory"),
        ("list, grouped by kind", "/?group=1"),
        ("diagnosis", f"/diagnoses/{middle_id}"),
        ("log", f"/diagnoses/{middle_id}/log"),
        ("log around a line", f"/diagnoses/{middle_id}/log?around=180"),
        ("dashboard, 30 days", "/dashboard"),
        ("dashboard, 365 days", "/dashboard?days=365"),
        ("dashboard, one team", "/dashboard?team=vision&days=90"),
    ]


def time_pages(settings: Settings, middle_id: int, *, repeat: int) -> list[tuple[str, float, float]]:
    """(page, median ms, worst ms) over `repeat` requests each, after one warm-up request."""
    results = []
    with TestClient(create_app(settings)) as client:
        for name, path in pages(middle_id):
            assert client.get(path).status_code == 200, path
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, path
            results.append((name, statistics.median(times), max(times)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diagnoses", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database, not SQLite")
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-web-")))
        server_url = os.environ.get("TRAINWRECK_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        database_url = stack.enter_context(fresh_postgres_database(server_url)) if arguments.postgres else None
        settings = Settings.read(env_file=None, data_dir=data_dir, database_url=database_url, auth="off")
        upgrade(settings.sqlalchemy_url)
        started = time.perf_counter()
        middle_id = seed(settings.sqlalchemy_url, arguments.diagnoses)
        backend = "PostgreSQL" if arguments.postgres else "SQLite"
        print(f"seeded {arguments.diagnoses:,} diagnoses on {backend} in {time.perf_counter() - started:.1f} s")
        results = time_pages(settings, middle_id, repeat=arguments.repeat)
    print(f"{'page':<26}{'median ms':>11}{'worst ms':>10}  within {BUDGET_MS:.0f} ms")
    for name, median, worst in results:
        print(f"{name:<26}{median:>11.1f}{worst:>10.1f}  {'yes' if worst <= BUDGET_MS else 'NO'}")
    slowest = max(worst for _, _, worst in results)
    print(f"slowest page, worst request: {slowest:.1f} ms = {slowest / BUDGET_MS:.2f} × the budget")


if __name__ == "__main__":
    main()
