"""Shared fixtures: the store on SQLite and PostgreSQL, one diagnoser per run, the app in-process and on loopback.

PostgreSQL tests use a database created for the run on the server named by TRAINWRECK_TEST_POSTGRES_URL
and dropped at the end. Without that variable they skip, unless TRAINWRECK_REQUIRE_ALL_TESTS=1 (CI),
where a missing server fails them.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import LiveServer
from sqlalchemy import URL, Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.diagnosis.engine import Diagnoser
from app.diagnosis.signatures import load_signature_set
from app.main import create_app
from app.store import migrate
from app.store.models import Base
from app.store.session import create_db_engine, create_session_factory

POSTGRES_URL_VARIABLE = "TRAINWRECK_TEST_POSTGRES_URL"
REQUIRE_ALL_VARIABLE = "TRAINWRECK_REQUIRE_ALL_TESTS"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_server() -> URL:
    """The test server's URL, or skip (fail when every test must run)."""
    configured = os.environ.get(POSTGRES_URL_VARIABLE)
    if not configured:
        reason = f"{POSTGRES_URL_VARIABLE} is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
            pytest.fail(f"{REQUIRE_ALL_VARIABLE}=1 but {reason}")
        pytest.skip(reason)
    return make_url(configured)


def _admin_connection(server: URL) -> psycopg.Connection:
    maintenance = server.set(drivername="postgresql", database="postgres")
    dsn = maintenance.render_as_string(hide_password=False)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        if os.environ.get(REQUIRE_ALL_VARIABLE) == "1":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL_VARIABLE} is unreachable: {error}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL_VARIABLE} is unreachable: {error}")


class PostgresDatabases:
    """Creates throw-away databases on the test server and drops them all at the end."""

    def __init__(self, server: URL) -> None:
        self.server = server
        self.created: list[str] = []

    def create(self) -> str:
        """A new empty database; its SQLAlchemy URL."""
        name = f"trainwreck_test_{secrets.token_hex(4)}"
        with _admin_connection(self.server) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        self.created.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with _admin_connection(self.server) as connection:
            for name in self.created:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    """Throw-away databases on the test server (skips without one)."""
    databases = PostgresDatabases(_postgres_server())
    _admin_connection(databases.server).close()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_databases: PostgresDatabases) -> str:
    """One database for the run, migrated once; tests empty its tables before use."""
    url = postgres_databases.create()
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file each test copies (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("store") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _empty_tables(url: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
            connection.execute(text(f"TRUNCATE {tables}, procrastinate_jobs RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store: a SQLite file, then (as a second case) a PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "trainwreck.sqlite3"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("migrated_postgres_url")
    _empty_tables(url)
    return url


@pytest.fixture(params=BACKENDS)
def empty_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store with no schema at all (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create()


@pytest.fixture
def db_engine(store_url: str) -> Iterator[Engine]:
    engine = create_db_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(db_engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work the test commits itself."""
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def diagnoser() -> Diagnoser:
    """The built-in signatures, compiled once for the whole run."""
    return Diagnoser(load_signature_set())


TEAM_SIGNATURE = """\
id: team-oom-is-config
category: config_error
title: Our launcher asks for too much memory
priority: 100
patterns:
  - 'CUDA out of memory\\. Tried to allocate 2\\.00 GiB'
explanation: >
  Our launcher sets a batch size that never fits; fix the launcher config.
samples:
  match:
    - 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.'
  no_match:
    - 'CUDA out of memory. Tried to allocate 1.00 GiB.'
"""


@pytest.fixture(scope="session")
def team_diagnoser(tmp_path_factory: pytest.TempPathFactory) -> Diagnoser:
    """The built-in signatures plus a team signature that re-labels the OOM logs (a signature change)."""
    folder = tmp_path_factory.mktemp("team-signatures")
    (folder / "team-oom-is-config.yaml").write_text(TEAM_SIGNATURE)
    return Diagnoser(load_signature_set([folder]))


@pytest.fixture
def make_settings(store_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings on the test store, ignoring any .env; keyword arguments override fields."""

    def make(**overrides: object) -> Settings:
        fields: dict[str, object] = {"database_url": store_url, "data_dir": tmp_path / "data"} | overrides
        return Settings.read(env_file=None, **fields)

    return make


@pytest.fixture
def store_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def make_app(diagnoser: Diagnoser, make_settings: Callable[..., Settings]) -> Callable[..., FastAPI]:
    """A new app on the test store with the shared diagnoser; keyword arguments override settings."""

    def make(**overrides: object) -> FastAPI:
        return create_app(make_settings(**overrides), diagnoser=diagnoser)

    return make


@pytest.fixture
def api_client(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    """The app in-process (ASGI), auth on loopback defaults, lifespan run."""
    with TestClient(make_app()) as client:
        yield client


@pytest.fixture
def live_server(make_app: Callable[..., FastAPI]) -> Iterator[LiveServer]:
    """The app on a free loopback port, served by uvicorn."""
    server = LiveServer(make_app())
    server.start()
    yield server
    server.stop()
