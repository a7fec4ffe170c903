"""Block Kit messages trainwreck posts to Slack: diagnoses, notices, stats and help."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
    StaticSelectElement,
)

from app.diagnosis.model import Diagnosis, Remedy
from app.diagnosis.taxonomy import categories
from app.formatting import format_value

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
EVIDENCE_LIMIT = 600


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message as chat.postMessage, incoming webhooks and slash-command answers take it."""

    text: str  # the notification and screen-reader fallback
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body fields `text` and `blocks`."""
        return {"text": self.text, "blocks": self.blocks}


FEEDBACK_RIGHT = "feedback_right"
FEEDBACK_WRONG = "feedback_wrong"


def diagnosis_message(
    diagnosis: Diagnosis, *, url: str, max_remedies: int = 3, about: Sequence[str] = (),
    feedback_for: int | None = None,
) -> SlackMessage:
    """A diagnosis as a Block Kit message: title, category, stage and step, top remedies, a link.

    `about` are short mrkdwn facts of the submission (team, job) shown under the link; with `feedback_for`
    (the stored diagnosis's id), "Right" and "Wrong: it was ..." controls (POST /slack/interactions).
    """
    blocks: list[Block] = [
        HeaderBlock(text=_truncate(diagnosis.title or "Diagnosis", HEADER_LIMIT)),
        SectionBlock(fields=[_mrkdwn(_truncate(text, FIELD_LIMIT)) for text in _facts(diagnosis)]),
    ]
    if diagnosis.summary:
        blocks.append(SectionBlock(text=_mrkdwn(_escaped(diagnosis.summary, SECTION_LIMIT))))
    remedies = diagnosis.remedies[:max_remedies]
    if remedies:
        lines = "\n".join(f"• {remedy_line(remedy)}" for remedy in remedies)
        blocks.append(SectionBlock(text=_mrkdwn(_truncate(f"*What to change*\n{lines}", SECTION_LIMIT))))
    if diagnosis.evidence:
        first = diagnosis.evidence[0]
        snippet = _truncate(first.text, EVIDENCE_LIMIT).replace("```", "`\u200b``")
        blocks.append(SectionBlock(text=_mrkdwn(f"*Line {first.line}*\n```{escape(snippet)}```")))
    actions: list[Any] = [ButtonElement(text="Open diagnosis", url=url, action_id="open_diagnosis")]
    if feedback_for is not None:
        actions.append(ButtonElement(text="Right", action_id=FEEDBACK_RIGHT, value=str(feedback_for), style="primary"))
        actions.append(StaticSelectElement(
            placeholder="Wrong: it was…", action_id=FEEDBACK_WRONG,
            options=[Option(text=name, value=f"{feedback_for}:{name}") for name in categories() if name != "unknown"],
        ))
    blocks.append(ActionsBlock(elements=actions))
    blocks.append(ContextBlock(elements=[_mrkdwn(" · ".join([f"<{url}|{escape(url)}>", *about]))]))
    fallback = f"{diagnosis.title} ({diagnosis.category}, {_where(diagnosis)}): {url}"
    return SlackMessage(text=fallback, blocks=_dicts(blocks))


def notice_message(text: str) -> SlackMessage:
    """A short plain reply (mrkdwn), such as why a file could not be diagnosed."""
    section = SectionBlock(text=_mrkdwn(_truncate(text, SECTION_LIMIT)))
    return SlackMessage(text=text, blocks=_dicts([section]))


def stats_message(team: str, *, days: int, counts: Mapping[str, int]) -> SlackMessage:
    """A team's diagnoses over the last days, counted by category, most frequent first."""
    total = sum(counts.values())
    heading = f"*{escape(team)}*: {total} diagnos{'i' if total == 1 else 'e'}s in the last {days} days"
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines = "\n".join(f"• `{escape(category)}`: {count}" for category, count in ranked)
    body = f"{heading}\n{lines}" if lines else heading
    return SlackMessage(
        text=f"{team}: {total} diagnoses in the last {days} days",
        blocks=_dicts([SectionBlock(text=_mrkdwn(_truncate(body, SECTION_LIMIT)))]),
    )


def help_message(command: str) -> SlackMessage:
    """What the slash command understands."""
    lines = [
        f"`{command} <diagnosis id>`: show that diagnosis",
        f"`{command} <job id>`: show the newest diagnosis of that job "
        f"(`{command} job <job id>` when the job id could be taken for a diagnosis id)",
        f"`{command} stats`: this channel's team, last 7 days",
        f"`{command} help`: this message",
        "Attach a training log (plain, gzip or zstd) or paste a crash log in a code block "
        "in a channel I am in, and I reply with what killed the run.",
    ]
    return notice_message("\n".join(lines))


def remedy_line(remedy: Remedy) -> str:
    """One remedy in mrkdwn: `parameter` current → suggested, and why."""
    name = f"`{escape(remedy.parameter)}`"
    why = escape(remedy.why)
    if remedy.suggested is None:
        return f"{name}: {why}"
    if remedy.current is None:
        change = f"{name} → `{escape(_value(remedy.suggested))}`"
    else:
        change = f"{name} `{escape(_value(remedy.current))}` → `{escape(_value(remedy.suggested))}`"
    return f"{change}: {why}" if why else change


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(diagnosis: Diagnosis) -> list[str]:
    facts = [
        f"*Category*\n`{escape(diagnosis.category)}`",
        f"*Stage*\n{escape(_where(diagnosis))}",
        f"*Confidence*\n{diagnosis.confidence:.0%}",
    ]
    framework = diagnosis.run.get("framework")
    if framework:
        facts.append(f"*Framework*\n{escape(str(framework))}")
    return facts


def _where(diagnosis: Diagnosis) -> str:
    if diagnosis.step is None:
        return diagnosis.stage
    of_total = f" of {diagnosis.total_steps}" if diagnosis.total_steps else ""
    return f"{diagnosis.stage}, step {diagnosis.step}{of_total}"


def _value(value: object) -> str:
    return format_value(value, missing="None")


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escaped(text: str, limit: int) -> str:
    """Escape, then cut to the limit without leaving half an entity behind."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    ampersand = cut.rfind("&")
    if ampersand >= 0 and ";" not in cut[ampersand:]:
        cut = cut[:ampersand]
    return cut + "…"


def _dicts(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]
