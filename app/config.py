"""Settings: the only place environment variables (TRAINWRECK_*) and `.env` are read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import SettingsError

ENV_PREFIX = "TRAINWRECK_"


class Settings(BaseModel):
    """Every setting of trainwreck, typed; see docs/settings.md for each one.

    Each is read from its environment variable (`TRAINWRECK_` and its name, any case), else from that line of
    `.env` in the working folder, unless given as a keyword; `env_file=None` reads no `.env`. A plain model
    rather than pydantic-settings' BaseSettings: importing that costs every `trainwreck diagnose` ~0.1 s.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def __init__(self, env_file: str | Path | None = ".env", **values: Any) -> None:
        try:
            super().__init__(**{**_environment(env_file), **values})
        except ValidationError as error:
            wrong = error.errors()[0]
            name = str(wrong["loc"][0]) if wrong["loc"] else ""
            field = type(self).model_fields.get(name)
            where = _variable(name, field.validation_alias) if field is not None else name
            raise SettingsError(f"setting {where}: {wrong['msg']}") from None

    data_dir: Path = Field(
        default=Path("trainwreck-data"), description="Where the embedded SQLite store and the uploads being read live."
    )
    client_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("trainwreck"),
        description="Where `trainwreck run` keeps the (redacted) logs of failed runs and `submit` its spool: per user.",
        json_schema_extra={"shown_default": "the user's data folder (`~/.local/share/trainwreck` on Linux)"},
    )
    run_logs_keep: int = Field(default=50, ge=0, description="Run logs `trainwreck run` keeps; the oldest go first.")
    run_logs_max_bytes: int = Field(
        default=4 * 1024**3, ge=0, description="Total size of the run logs kept; past it the oldest go."
    )
    cache_dir: Path | None = Field(
        default=Path("~/.cache/trainwreck"),
        description="Where compiled pattern databases are cached between runs (unset: no cache).",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means SQLite in data_dir. Use postgresql+psycopg://... for teams.",
    )
    signature_dirs: list[Path] = Field(
        default_factory=list, description="Extra signature folders (a team's own), loaded after the built-in ones."
    )
    metrics_token: str | None = Field(
        default=None,
        description="The bearer token Prometheus sends for /metrics when auth is on (unset: /metrics is closed then).",
    )
    framework_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra framework folders (a trainer of your own: its step formats, spellings and frames).",
    )
    rule_dirs: list[Path] = Field(
        default_factory=list,
        description="Extra rule folders for `trainwreck check` (a team's own), loaded after the built-in ones.",
    )
    max_upload_bytes: int = Field(
        default=2 * 1024**3, description="Largest accepted log upload, before decompression (413 past it)."
    )
    max_decompressed_bytes: int = Field(
        default=16 * 1024**3, description="Largest decompressed log; bounds gzip/zstd bombs."
    )
    upload_idle_timeout_seconds: float = Field(
        default=60.0, gt=0, description="An upload that sends nothing for this long is dropped (408)."
    )
    header_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A connection whose request headers are not all in after this long is closed."
    )
    diagnose_timeout_seconds: float = Field(
        default=600.0, description="Wall-clock cap on one diagnosis in the service."
    )
    small_log_bytes: int = Field(
        default=16 << 20,
        ge=0,
        description="Uncompressed uploads up to this size are diagnosed in a lane of their own, never behind big ones.",
    )
    background_log_bytes: int = Field(
        default=64 << 20,
        ge=0,
        description=(
            "Uploads larger than this (as received) are diagnosed in a background job: 202 Accepted with a status URL "
            "(on PostgreSQL through a task queue every replica works on; they then need a shared data_dir)."
        ),
    )
    max_concurrent_diagnoses: int = Field(
        default=2,
        ge=1,
        description="Diagnoses the service runs at once (worker threads); more uploads wait their turn.",
    )
    host: str = Field(
        default="127.0.0.1",
        description="Address `trainwreck serve` listens on (--host overrides); off loopback, auth is required.",
    )
    port: int = Field(
        default=8000, ge=0, le=65535, description="Port `trainwreck serve` listens on (--port overrides)."
    )
    auth: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto: tokens required once any token exists or when bound to a non-loopback address.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL used in links (Slack replies, `url` in API answers)."
    )
    url: str | None = Field(
        default=None, description="Server that `trainwreck submit` and `trainwreck run` send logs to."
    )
    token: str | None = Field(default=None, description="API token `trainwreck submit` and `trainwreck run` send.")
    submit_attempts: int = Field(
        default=4, ge=1, description="Tries per log and invocation before `submit`/`run` leave it in the spool."
    )
    submit_backoff_seconds: float = Field(
        default=1.0, ge=0, description="First wait between tries; doubles after each failed try (with jitter)."
    )
    submit_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Network timeout of one upload (connect, each read and write), in seconds."
    )
    slack_signing_secret: str | None = Field(
        default=None, description="Slack app signing secret; Slack routes answer 503 without it."
    )
    slack_bot_token: str | None = Field(
        default=None, description="Slack bot token (xoxb-...) for downloading files and replying."
    )
    slack_api_base_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (tests point it at a fake)."
    )
    slack_channel_teams: dict[str, str] = Field(
        default_factory=dict,
        description='Slack channel id (or workspace id) → trainwreck team, JSON: {"C0123": "vision", "T0456": "nlp"}.',
    )
    slack_default_team: str = Field(
        default="default", description="Team for Slack messages from channels not in slack_channel_teams."
    )
    slack_max_file_bytes: int = Field(default=200 * 1024**2, description="Largest Slack file downloaded for diagnosis.")
    slack_webhook_url_prefixes: list[str] = Field(
        default_factory=lambda: ["https://hooks.slack.com/"],
        description='Allowed starts of team webhook URLs, JSON: ["https://hooks.slack.com/"].',
    )
    slack_webhook_attempts: int = Field(
        default=5, ge=1, description="Tries per new-diagnosis post to a team's Slack webhook."
    )
    slack_webhook_backoff_seconds: float = Field(
        default=1.0, ge=0, description="First wait between webhook tries; doubles after each failed try (with jitter)."
    )

    no_color: bool = Field(
        default=False,
        validation_alias="NO_COLOR",
        description="Set (to anything) to turn off colour in terminal reports, as with other tools.",
    )

    @field_validator("no_color", mode="before")
    @classmethod
    def _any_value_means_yes(cls, value: object) -> object:
        return value is not None and value is not False

    @field_validator("signature_dirs", "framework_dirs", "rule_dirs", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [part for part in value.replace(",", ":").split(":") if part]
        return value

    @field_validator("slack_channel_teams", "slack_webhook_url_prefixes", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"not JSON: {error}") from None
        return value

    def export(self, *names: str) -> None:
        """Put these settings into the environment, for processes that build their own Settings (server workers)."""
        values = {f"{ENV_PREFIX}{name.upper()}": getattr(self, name) for name in names}
        os.environ.update({key: str(value) for key, value in values.items() if value is not None})

    @property
    def upload_spool_dir(self) -> Path:
        """Where uploads are streamed while they are diagnosed (swept at start-up)."""
        return self.data_dir / "uploads"

    @property
    def job_log_dir(self) -> Path:
        """Where uploads wait for their background job (on PostgreSQL, a folder every replica reaches)."""
        return self.data_dir / "jobs"

    @property
    def sqlalchemy_url(self) -> str:
        """The store URL, defaulting to the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'trainwreck.sqlite3').resolve()}"


def _environment(env_file: str | Path | None) -> dict[str, str]:
    """Each setting's value from the environment, or else from the .env file, by field name."""
    names = {_variable(name, field.validation_alias).upper(): name for name, field in Settings.model_fields.items()}
    found: dict[str, str] = {}
    try:
        dotenv = dotenv_values(env_file) if env_file is not None and Path(env_file).is_file() else {}
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"cannot read {env_file}: {getattr(error, 'strerror', None) or error}") from None
    for source in (dotenv, os.environ):  # the environment wins
        for variable, value in source.items():
            if (name := names.get(variable.upper())) is not None and value is not None:
                found[name] = value
    return found


def _variable(name: str, alias: object) -> str:
    return alias if isinstance(alias, str) else f"{ENV_PREFIX}{name.upper()}"


def settings_reference() -> str:
    """Every setting as a Markdown table (docs/settings.md is this; a test keeps them equal)."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shown = str(extra.get("shown_default") or ("unset" if default is None else f"`{default}`"))
        variable = _variable(name, field.validation_alias)
        rows.append(f"| `{variable}` | {shown} | {field.description} |")
    intro = "# Settings\n\nEnvironment variables (or lines of `.env`), read only by `app/config.py`.\n\n"
    return intro + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_reference(), end="")
