"""Settings read from the environment and `.env`: which wins, how lists and JSON are read, bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import SettingsError


def test_the_environment_wins_over_dotenv_and_keywords_over_both(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TRAINWRECK_PORT=8100\ntrainwreck_host=0.0.0.0\nTRAINWRECK_SUBMIT_ATTEMPTS=7\n")
    monkeypatch.setenv("TRAINWRECK_PORT", "8200")
    settings = Settings.read(env_file=env_file, submit_attempts=2)
    assert (settings.port, settings.host, settings.submit_attempts) == (8200, "0.0.0.0", 2)
    assert Settings.read(env_file=None).host == "127.0.0.1"


def test_lists_of_folders_json_and_no_color_are_read_from_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINWRECK_SIGNATURE_DIRS", "/teams/a:/teams/b,/teams/c")
    monkeypatch.setenv("TRAINWRECK_SLACK_CHANNEL_TEAMS", '{"C0123": "vision"}')
    monkeypatch.setenv("NO_COLOR", "")
    settings = Settings.read(env_file=None)
    assert settings.signature_dirs == [Path("/teams/a"), Path("/teams/b"), Path("/teams/c")]
    assert settings.slack_channel_teams == {"C0123": "vision"}
    assert settings.no_color is True


@pytest.mark.parametrize(("variable", "value"), [("TRAINWRECK_PORT", "eighty"),
                                                 ("TRAINWRECK_SLACK_CHANNEL_TEAMS", "{C0123: vision")])
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^setting {variable}: "):
        Settings.read(env_file=None)


def test_the_cli_says_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("RuntimeError: CUDA out of memory.\n")
    result = subprocess.run([sys.executable, "-m", "app.cli", "diagnose", str(log)], capture_output=True, text=True,
                            env={**os.environ, "TRAINWRECK_MAX_DECOMPRESSED_BYTES": "lots"}, cwd=tmp_path,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("trainwreck: setting TRAINWRECK_MAX_DECOMPRESSED_BYTES: ")
    assert len(result.stderr.splitlines()) == 1


def test_an_unreadable_dotenv_is_one_clear_error(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"TRAINWRECK_PORT=\xff\xfe\n")
    with pytest.raises(SettingsError, match=r"^cannot read "):
        Settings.read(env_file=env_file)
