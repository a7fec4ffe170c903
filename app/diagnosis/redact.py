"""Secrets that training logs leak, replaced before anything is stored or shown."""

from __future__ import annotations

import regex

_SECRET_PATTERNS: list[tuple[str, bytes]] = [
    ("pem", rb"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("huggingface", rb"\bhf_[A-Za-z0-9]{30,}\b"),
    ("slack", rb"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("slack", rb"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    ("github", rb"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    ("openai", rb"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}"),
    ("aws", rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("aws", rb"(?i)(?<=aws_secret_access_key[\"']?\s*[=:]\s*[\"']?)[A-Za-z0-9/+]{40}"),
    ("wandb", rb"(?i)(?<=wandb_api_key[\"']?\s*[=:]\s*[\"']?)[a-f0-9]{40}\b"),
    ("wandb", rb"(?i)(?<=wandb[^\n]{0,40}?\b)[a-f0-9]{40}\b"),
    ("bearer", rb"(?i)(?<=\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    ("authorization", rb"(?i)(?<=\bauthorization[\"']?\s*[=:]\s*[\"']?)(?!bearer\b)[^\s\"',}]{8,}"),
    ("password", rb"(?<=[a-z][a-z0-9+.-]*://[^\s:/@]{1,64}:)[^\s@/]{1,128}(?=@)"),
    ("password", rb"(?i)(?<=\b(?:password|passwd|secret|token|api_key|apikey)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}]{6,}"),
]

_COMBINED = regex.compile(
    b"|".join(b"(?P<k%d>%s)" % (index, pattern) for index, (_, pattern) in enumerate(_SECRET_PATTERNS))
)
_KINDS = {f"k{index}": kind for index, (kind, _) in enumerate(_SECRET_PATTERNS)}
_TRIGGERS = (b"hf_", b"xox", b"hooks.slack", b"gh", b"github_pat", b"sk-", b"AKIA", b"ASIA", b"aws_secret",
             b"AWS_SECRET", b"://", b"PRIVATE KEY", b"earer", b"EARER", b"uthorization", b"UTHORIZATION",
             b"wandb", b"WANDB", b"assw", b"ASSW", b"ecret", b"ECRET", b"oken", b"OKEN", b"api", b"API")


def _replace(match: regex.Match[bytes]) -> bytes:
    kind = _KINDS[match.lastgroup or ""]
    newlines = match.group().count(b"\n")
    return b"[REDACTED:" + kind.encode() + b"]" + b"\n" * newlines


def redact_secrets(data: bytes) -> bytes:
    """Replace tokens, keys and passwords with `[REDACTED:kind]`, keeping every newline in place."""
    if not any(trigger in data for trigger in _TRIGGERS):
        return data
    return _COMBINED.sub(_replace, data)


def redact_text(text: str) -> str:
    """redact_secrets for a decoded line."""
    return redact_secrets(text.encode("utf-8", errors="surrogateescape")).decode("utf-8", errors="replace")
