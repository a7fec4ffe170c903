"""Settings: the only place environment variables (TRAINWRECK_*) and `.env` are read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from app.errors import SettingsError
from app.validation import convert, error_location

ENV_PREFIX = "TRAINWRECK_"
# read from text: a list of folders separated by `:` (or `,`), JSON, any value at all meaning yes
_FOLDER_LISTS = ("signature_dirs", "framework_dirs", "rule_dirs")
_JSON = ("slack_channel_teams", "slack_webhook_url_prefixes")
_PRESENCE = ("no_color",)


def _doc(description: str, **extra: str) -> msgspec.Meta:
    """A setting's description (docs/settings.md), and its `shown_default` where the default is not shown as is."""
    return msgspec.Meta(description=description, extra=extra or None)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of trainwreck, typed; see docs/settings.md for each one.

    `Settings.read()` takes each from its environment variable (`TRAINWRECK_` and its name, any case), else
    from that line of `.env` in the working folder, unless given as a keyword. A msgspec struct rather than
    a pydantic model: importing pydantic cost every `trainwreck diagnose` ~0.1 s.
    """

    data_dir: Annotated[Path, _doc("Where the embedded SQLite store and the uploads being read live.")] = Path(
        "trainwreck-data")
    client_dir: Annotated[Path | None, _doc(
        "Where `trainwreck run` keeps the (redacted) logs of failed runs and `submit` its spool: per user.",
        shown_default="the user's data folder (`~/.local/share/trainwreck` on Linux)")] = None
    run_logs_keep: Annotated[int, msgspec.Meta(ge=0), _doc(
        "Run logs `trainwreck run` keeps; the oldest go first.")] = 50
    run_logs_max_bytes: Annotated[int, msgspec.Meta(ge=0), _doc(
        "Total size of the run logs kept; past it the oldest go.")] = 4 * 1024**3
    cache_dir: Annotated[Path | None, _doc(
        "Where compiled pattern databases are cached between runs (unset: no cache).")] = Path("~/.cache/trainwreck")
    database_url: Annotated[str | None, _doc(
        "SQLAlchemy URL; unset means SQLite in data_dir. Use postgresql+psycopg://... for teams.")] = None
    signature_dirs: Annotated[list[Path], _doc(
        "Extra signature folders (a team's own), loaded after the built-in ones.")] = []
    metrics_token: Annotated[str | None, _doc(
        "The bearer token Prometheus sends for /metrics when auth is on (unset: /metrics is closed then).")] = None
    framework_dirs: Annotated[list[Path], _doc(
        "Extra framework folders (a trainer of your own: its step formats, spellings and frames).")] = []
    rule_dirs: Annotated[list[Path], _doc(
        "Extra rule folders for `trainwreck check` (a team's own), loaded after the built-in ones.")] = []
    max_upload_bytes: Annotated[int, _doc(
        "Largest accepted log upload, before decompression (413 past it).")] = 2 * 1024**3
    max_decompressed_bytes: Annotated[int, _doc("Largest decompressed log; bounds gzip/zstd bombs.")] = 16 * 1024**3
    upload_idle_timeout_seconds: Annotated[float, msgspec.Meta(gt=0), _doc(
        "An upload that sends nothing for this long is dropped (408).")] = 60.0
    header_timeout_seconds: Annotated[float, msgspec.Meta(gt=0), _doc(
        "A connection whose request headers are not all in after this long is closed.")] = 30.0
    diagnose_timeout_seconds: Annotated[float, _doc("Wall-clock cap on one diagnosis in the service.")] = 600.0
    small_log_bytes: Annotated[int, msgspec.Meta(ge=0), _doc(
        "Uncompressed uploads up to this size are diagnosed in a lane of their own, never behind big ones.")] = 16 << 20
    background_log_bytes: Annotated[int, msgspec.Meta(ge=0), _doc(
        "Uploads larger than this (as received) are diagnosed in a background job: 202 Accepted with a status URL "
        "(on PostgreSQL through a task queue every replica works on; they then need a shared data_dir).")] = 64 << 20
    max_concurrent_diagnoses: Annotated[int, msgspec.Meta(ge=1), _doc(
        "Diagnoses the service runs at once (worker threads); more uploads wait their turn.")] = 2
    host: Annotated[str, _doc(
        "Address `trainwreck serve` listens on (--host overrides); off loopback, auth is required.")] = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535), _doc(
        "Port `trainwreck serve` listens on (--port overrides).")] = 8000
    auth: Annotated[Literal["auto", "on", "off"], _doc(
        "auto: tokens required once any token exists or when bound to a non-loopback address.")] = "auto"
    public_url: Annotated[str | None, _doc(
        "Base URL used in links (Slack replies, `url` in API answers); unset: the address served, "
        "http://HOST:PORT.")] = None
    url: Annotated[str | None, _doc("Server that `trainwreck submit` and `trainwreck run` send logs to.")] = None
    token: Annotated[str | None, _doc("API token `trainwreck submit` and `trainwreck run` send.")] = None
    submit_attempts: Annotated[int, msgspec.Meta(ge=1), _doc(
        "Tries per log and invocation before `submit`/`run` leave it in the spool.")] = 4
    submit_backoff_seconds: Annotated[float, msgspec.Meta(ge=0), _doc(
        "First wait between tries; doubles after each failed try (with jitter).")] = 1.0
    submit_timeout_seconds: Annotated[float, msgspec.Meta(gt=0), _doc(
        "Network timeout of one upload (connect, each read and write), in seconds.")] = 300.0
    slack_signing_secret: Annotated[str | None, _doc(
        "Slack app signing secret; Slack routes answer 503 without it.")] = None
    slack_bot_token: Annotated[str | None, _doc(
        "Slack bot token (xoxb-...) for downloading files and replying.")] = None
    slack_api_base_url: Annotated[str, _doc(
        "Slack Web API base URL (tests point it at a fake).")] = "https://slack.com/api/"
    slack_channel_teams: Annotated[dict[str, str], _doc(
        'Slack channel id (or workspace id) → trainwreck team, JSON: {"C0123": "vision", "T0456": "nlp"}.')] = {}
    slack_default_team: Annotated[str, _doc(
        "Team for Slack messages from channels not in slack_channel_teams.")] = "default"
    slack_max_file_bytes: Annotated[int, _doc("Largest Slack file downloaded for diagnosis.")] = 200 * 1024**2
    slack_webhook_url_prefixes: Annotated[list[str], _doc(
        'Allowed starts of team webhook URLs, JSON: ["https://hooks.slack.com/"].')] = msgspec.field(
        default_factory=lambda: ["https://hooks.slack.com/"])
    slack_webhook_attempts: Annotated[int, msgspec.Meta(ge=1), _doc(
        "Tries per new-diagnosis post to a team's Slack webhook.")] = 5
    slack_webhook_backoff_seconds: Annotated[float, msgspec.Meta(ge=0), _doc(
        "First wait between webhook tries; doubles after each failed try (with jitter).")] = 1.0
    no_color: Annotated[bool, _doc(
        "Set (to anything) to turn off colour in terminal reports, as with other tools.")] = False

    @classmethod
    def read(cls, env_file: str | Path | None = ".env", **values: Any) -> Settings:
        """The settings from the environment, else from `env_file` (None: no file), with these keywords on top;
        SettingsError names the variable of a value of the wrong kind."""
        try:
            return convert({**_environment(env_file), **values}, cls, strict=False)
        except msgspec.ValidationError as error:
            location, message = error_location(error)
            raise SettingsError(f"setting {_variable(location.split('.')[0])}: {message}") from None

    def replace(self, **values: Any) -> Settings:
        """These settings with some changed (`serve --port` over TRAINWRECK_PORT, say)."""
        return msgspec.structs.replace(self, **values)

    def export(self, *names: str) -> None:
        """Put these settings into the environment, for processes that build their own Settings (server workers)."""
        values = {f"{ENV_PREFIX}{name.upper()}": getattr(self, name) for name in names}
        os.environ.update({key: str(value) for key, value in values.items() if value is not None})

    @property
    def base_url(self) -> str:
        """Where links point: public_url, or the address being served."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def client_folder(self) -> Path:
        """client_dir, or the user's data folder."""
        if self.client_dir is not None:
            return self.client_dir
        import platformdirs  # only `run` and `submit` need it

        return platformdirs.user_data_path("trainwreck")

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


def _fields() -> dict[str, msgspec.inspect.Field]:
    info = msgspec.inspect.type_info(Settings)
    assert isinstance(info, msgspec.inspect.StructType)
    return {field.name: field for field in info.fields}


def _meta(field: msgspec.inspect.Field) -> tuple[str, dict[str, str]]:
    """(description, extra) of a setting."""
    kind = field.type
    schema = kind.extra_json_schema if isinstance(kind, msgspec.inspect.Metadata) else None
    extra = kind.extra if isinstance(kind, msgspec.inspect.Metadata) else None
    return str((schema or {}).get("description", "")), dict(extra or {})


def _variable(name: str) -> str:
    """The environment variable of a setting."""
    return _VARIABLES.get(name, f"{ENV_PREFIX}{name.upper()}")


_VARIABLES = {"no_color": "NO_COLOR"}  # the settings whose variable is not TRAINWRECK_ and their name


def _environment(env_file: str | Path | None) -> dict[str, object]:
    """Each setting's value from the environment, or else from the .env file, by field name."""
    names = {_variable(name).upper(): name for name in Settings.__struct_fields__}
    found: dict[str, object] = {}
    for source in (_dotenv(env_file), os.environ):  # the environment wins
        for variable, value in source.items():
            if (name := names.get(variable.upper())) is not None and value is not None:
                found[name] = _from_text(name, value)
    return found


def _dotenv(env_file: str | Path | None) -> dict[str, str | None]:
    if env_file is None or not Path(env_file).is_file():
        return {}
    from dotenv import dotenv_values  # only where there is a .env to read

    try:
        return dotenv_values(env_file)
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"cannot read {env_file}: {getattr(error, 'strerror', None) or error}") from None


def _from_text(name: str, value: str) -> object:
    """A setting's value as its variable spells it: folder lists and JSON are read here, the rest by msgspec."""
    if name in _PRESENCE:
        return True
    if name in _FOLDER_LISTS:
        return [part for part in value.replace(",", ":").split(":") if part]
    if name in _JSON:
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise SettingsError(f"setting {_variable(name)}: not JSON: {error}") from None
    return value


def settings_reference() -> str:
    """Every setting as a Markdown table (docs/settings.md is this; a test keeps them equal)."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in _fields().items():
        description, extra = _meta(field)
        default = field.default if field.default is not msgspec.NODEFAULT else field.default_factory()
        shown = extra.get("shown_default") or ("unset" if default is None else f"`{default}`")
        rows.append(f"| `{_variable(name)}` | {shown} | {description} |")
    intro = "# Settings\n\nEnvironment variables (or lines of `.env`), read only by `app/config.py`.\n\n"
    return intro + "\n".join(rows) + "\n"


def setting_descriptions() -> dict[str, str]:
    """Each setting's description, by name."""
    return {name: _meta(field)[0] for name, field in _fields().items()}


if __name__ == "__main__":
    print(settings_reference(), end="")
