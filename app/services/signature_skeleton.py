"""A signature file to start from, for a failure no signature knows: the masked template of its root line as
the pattern, the stored lines as the samples it must match. Edited, it goes into a team's signature folder."""

from __future__ import annotations

import regex
import yaml

from app.diagnosis.rootcause import message_template

# What each mask of a template stands for (app/diagnosis/rootcause.py masks them).
_MASKS = {"<time>": r"[\d:T .,-]+", "<path>": r"\S+", "<hex>": r"0x[0-9a-fA-F]+", "<hash>": r"[0-9a-f]{12,}",
          "<n>": r"\d+(?:\.\d+)?"}
_MASK = regex.compile("|".join(regex.escape(mask) for mask in _MASKS))


def template_pattern(template: str) -> str:
    """A regex matching every line with this template: the literal parts escaped, each mask what it masked."""
    parts: list[str] = []
    position = 0
    for found in _MASK.finditer(template):
        parts.append(_literal(template[position:found.start()]))
        parts.append(_MASKS[found.group()])
        position = found.end()
    parts.append(_literal(template[position:]))
    return "".join(parts)


def _literal(text: str) -> str:
    return r"\s+".join(regex.escape(word) for word in text.split(" "))


def signature_skeleton(fingerprint: str, lines: list[str]) -> str:
    """The YAML of a new signature for the lines (the root lines of one unknown failure kind's diagnoses)."""
    template = message_template(lines[0]) if lines else ""
    identifier = f"new-failure-{fingerprint[:8]}"
    document = {
        "id": identifier,
        "category": "unknown",
        "title": template[:120] or "A failure no signature knew",
        "role": "cause",
        "priority": 50,
        "patterns": [template_pattern(template)],
        "explanation": "What happened and why, for people. Choose the category from taxonomy.yaml.",
        "remedies": [],
        "samples": {"match": list(dict.fromkeys(lines))[:5],
                    "no_match": ["a line that looks alike but is another failure"]},
    }
    header = (f"# A skeleton for the failure kind {fingerprint}: edit the category, title, explanation, remedies\n"
              f"# and the near miss, save it as {identifier}.yaml (the id is the file's name) in your signature\n"
              "# folder (TRAINWRECK_SIGNATURE_DIRS).\n")
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
