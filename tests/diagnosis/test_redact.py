"""Secrets are replaced before anything is stored or shown; ordinary log text and line numbers are kept."""

from __future__ import annotations

import time

import pytest

from app.diagnosis.redact import load_redactor, redact_secrets, redact_text
from app.errors import SignatureError


@pytest.mark.parametrize(
    ("line", "kind", "secret"),
    [
        (b"export HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEFGH1234", b"huggingface", b"hf_abcdefghij"),
        (b"wandb: API key: 0123456789abcdef0123456789abcdef01234567", b"wandb", b"0123456789abcdef"),
        (b"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", b"aws", b"AKIAIOSFODNN7EXAMPLE"),
        (b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", b"aws", b"wJalrXUtnFEMI"),
        (b"posting with xoxb-2048-1234-abcdefghijKLMN", b"slack", b"xoxb-2048"),
        (b"webhook https://hooks.slack.com/services/T000/B000/XXXXXXXX", b"slack", b"T000/B000"),
        (b"git clone https://x:ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r", b"github", b"ghp_abcdef"),
        (b"OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx", b"openai", b"sk-proj-abc"),
        (b"DATABASE_URL=postgresql://trainer:s3cr3t-pw@db:5432/runs", b"password", b"s3cr3t-pw"),
        (b"requests: Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", b"bearer", b"eyJhbGciOi"),
        (b"--hub_token=abcdef0123456789", b"password", b"abcdef0123456789"),
    ],
)
def test_each_kind_of_secret_is_redacted(line: bytes, kind: bytes, secret: bytes) -> None:
    redacted = redact_secrets(line)
    assert secret not in redacted
    assert b"[REDACTED:" + kind + b"]" in redacted


def test_pem_block_keeps_its_line_count() -> None:
    data = b"before\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nabcd\n-----END RSA PRIVATE KEY-----\nafter\n"
    redacted = redact_secrets(data)
    assert b"MIIE" not in redacted
    assert redacted.count(b"\n") == data.count(b"\n")
    assert redacted.endswith(b"after\n")


@pytest.mark.parametrize(
    "line",
    [
        b"{'loss': 1.2, 'grad_norm': 0.4, 'learning_rate': 1e-05, 'epoch': 0.1}",
        b"pad_token: <|endoftext|>, max_tokens: 2048, num_tokens 12345",
        b"tokenizer_config.json: 100%|##########| 7.3k/7.3k",
        b"Downloading https://huggingface.co/Qwen/Qwen2.5-7B/resolve/main/config.json",
        b"sha256: 3f1c0a9e5b7d2c41aa90f0e4d7e5c1b2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8",
    ],
)
def test_ordinary_log_lines_are_untouched(line: bytes) -> None:
    assert redact_secrets(line) == line


def test_redact_text_works_on_decoded_lines() -> None:
    assert redact_text("token: hf_abcdefghijklmnopqrstuvwxyzABCDEFGH1234") == "token: [REDACTED:huggingface]"


_FORMS = load_redactor().forms
_HOSTILE = [b"a" * 100_000, b"--token " * 20_000, b"Authorization: " * 10_000, b"://" + b":" * 100_000,
            b"AKIA" + b"A" * 100_000, b"password=" * 20_000]


@pytest.mark.parametrize("form", _FORMS, ids=lambda form: form.path.stem)
def test_each_redaction_form_redacts_its_samples_and_leaves_its_near_misses(form) -> None:
    for sample in form.spec.samples.match:
        redacted = redact_secrets(sample.encode())
        assert b"[REDACTED:" in redacted, f"{form.path.stem}: {sample!r} kept its secret"
        assert redacted.count(b"\n") == sample.count("\n")
    for sample in form.spec.samples.no_match:
        assert redact_secrets(sample.encode()) == sample.encode(), f"{form.path.stem}: {sample!r} was changed"


@pytest.mark.parametrize("form", _FORMS, ids=lambda form: form.path.stem)
def test_each_redaction_pattern_is_fast_on_hostile_lines(form) -> None:
    for line in _HOSTILE:
        started = time.perf_counter()
        form.pattern.sub(form.replace, line, timeout=2.0)
        assert time.perf_counter() - started < 1.0, form.path.stem


def test_a_broken_redaction_file_names_the_file_and_the_field(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: x\npattern: '(unclosed'\nsamples: {match: [a], no_match: [b]}\n")
    with pytest.raises(SignatureError, match=r"bad\.yaml: field 'pattern'"):
        load_redactor(tmp_path)
