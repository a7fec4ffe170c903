"""Secrets that training logs leak, replaced before anything is stored or shown.

Each rule is screened first by one Hyperscan pass over the block; only the rules that fired run
their `re` substitution, so a multi-GB log without secrets costs one fast scan.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import hyperscan


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[bytes]  # group "keep", when present, is kept in front of the redaction

    def replace(self, match: re.Match[bytes]) -> bytes:
        kept = match.group("keep") if "keep" in self.pattern.groupindex else b""
        secret = match.group()[len(kept or b"") :]
        return (kept or b"") + b"[REDACTED:" + self.kind.encode() + b"]" + b"\n" * secret.count(b"\n")


_RULES = [
    _Rule("pem", re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")),
    _Rule("huggingface", re.compile(rb"\bhf_[A-Za-z0-9]{30,}\b")),
    _Rule("slack", re.compile(rb"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    _Rule("slack", re.compile(rb"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]+")),
    _Rule("github", re.compile(rb"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    _Rule("openai", re.compile(rb"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    _Rule("aws", re.compile(rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    _Rule("aws", re.compile(rb"(?i)(?P<keep>aws_secret_access_key[\"']?[ \t]*[=:][ \t]*[\"']?)[A-Za-z0-9/+]{40}")),
    _Rule("wandb", re.compile(rb"(?i)(?P<keep>wandb[^\n]{0,40}?)\b[a-f0-9]{40}\b")),
    _Rule("bearer", re.compile(rb"(?i)(?P<keep>\bbearer[ \t]+)[A-Za-z0-9._~+/=-]{8,}")),
    _Rule(
        "authorization",
        re.compile(rb"(?i)(?P<keep>\bauthorization[\"']?[ \t]*[=:][ \t]*[\"']?)(?!bearer\b)[^\s\"',}]{8,}"),
    ),
    _Rule("password", re.compile(rb"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]{1,64}:)(?!\[REDACTED)[^\s@/]{1,128}(?=@)")),
    _Rule(
        "password",
        re.compile(
            rb"(?i)(?P<keep>(?:\b|_)(?:password|passwd|secret|token|api_key|apikey)[\"']?[ \t]*[=:][ \t]*[\"']?)"
            rb"(?![<\[])[^\s\"',}]{6,}"
        ),
    ),
]
# Hyperscan screens: each rule's pattern without the constructs Hyperscan lacks (lookaround) and
# with bounded repeats, so that a rule fires on a block only when its `re` pattern can match there.
_SCREENS = [
    rb"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    rb"\bhf_[A-Za-z0-9]{30}",
    rb"\bxox[abposr]-[A-Za-z0-9-]{10}",
    rb"https://hooks\.slack\.com/services/",
    rb"\bgh[pousr]_[A-Za-z0-9]{30}|github_pat_[A-Za-z0-9_]{40}",
    rb"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20}",
    rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}",
    rb"(?i)aws_secret_access_key[\"']?[ \t]*[=:][ \t]*[\"']?[A-Za-z0-9/+]{40}",
    rb"(?i)wandb[^\n]{0,40}[a-f0-9]{40}",
    rb"(?i)\bbearer[ \t]+[A-Za-z0-9._~+/=-]{8}",
    rb"(?i)\bauthorization[\"']?[ \t]*[=:][ \t]*[\"']?[^\s\"',}]{8}",
    rb"\b[a-z][a-z0-9+.-]*://[^\s:/@]{1,64}:[^\s@/]{1,128}@",
    rb"(?i)(?:\b|_)(?:password|passwd|secret|token|api_key|apikey)[\"']?[ \t]*[=:][ \t]*[\"']?[^\s\"',}]{6}",
]
_SCREEN = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
_SCREEN.compile(
    expressions=_SCREENS,
    ids=list(range(len(_SCREENS))),
    flags=[hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_DOTALL] * len(_SCREENS),
)


_SCRATCH = threading.local()


def _thread_scratch() -> hyperscan.Scratch:
    """Hyperscan scratch space is per scan in flight: one per thread."""
    scratch = getattr(_SCRATCH, "space", None)
    if scratch is None:
        scratch = _SCRATCH.space = hyperscan.Scratch(_SCREEN)
    return scratch


def redact_secrets(data: bytes) -> bytes:
    """Replace tokens, keys and passwords with `[REDACTED:kind]`, keeping every newline in place."""
    fired: set[int] = set()

    def on_match(rule_id: int, start: int, end: int, flags: int, context: object) -> None:
        fired.add(rule_id)

    _SCREEN.scan(data, match_event_handler=on_match, scratch=_thread_scratch())
    for rule_id in sorted(fired):
        rule = _RULES[rule_id]
        data = rule.pattern.sub(rule.replace, data)
    return data


def redact_text(text: str) -> str:
    """redact_secrets for a decoded line."""
    return redact_secrets(text.encode("utf-8", errors="surrogateescape")).decode("utf-8", errors="replace")
