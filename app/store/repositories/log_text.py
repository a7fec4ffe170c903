"""The searchable lines of stored logs, and matches over them through the database's own index: every term
of a search, in any case (PostgreSQL: a GIN index over the text's parts, stored with each block; SQLite: an
FTS5 trigram index)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, false, insert, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import bindparam
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter

from app.store.models import LogText
from app.store.upsert import table_of

# The parts of a log's text that a search term is matched against: what lies between spaces, quotes, brackets
# and the separators of paths and `key=value` words. A search is split into its words by the same pattern. On
# PostgreSQL a block's terms are its parts and their word pieces (runs of word characters), as the migrations'
# SQL function `trainwreck_log_terms` defines them, except that Python's `\s` also counts the ASCII information
# separators, NEL and the no-break space (rows that function filled hold a few more whole parts).
_PART = re.compile(r"""[^\s"'`()<>{},;=/:|\[\]]+""")
_WORD_PIECE = re.compile(r"\w+")
MAX_TERM_BYTES = 200  # longer parts are not terms (PostgreSQL's lexemes are bounded)
# PostgreSQL: a log's blocks in one statement, each block's terms as one string (a row per statement and a list
# per block cost ~1.5 ms a log in psycopg and the server). No term holds the separator: `\s` splits at it.
_TERM_SEPARATOR = "\x1f"
_INSERT_WITH_TERMS = text(
    "INSERT INTO log_text (diagnosis_id, first_line, text, search_terms) "
    "SELECT diagnosis_id, first_line, text, array_to_tsvector(string_to_array(terms, :separator)) "
    "FROM unnest(CAST(:diagnosis_ids AS integer[]), CAST(:first_lines AS integer[]), CAST(:texts AS text[]), "
    "CAST(:terms AS text[])) AS block(diagnosis_id, first_line, text, terms)"
)
_INSERT = insert(table_of(LogText))  # not the ORM's bulk insert: its per-row bookkeeping cost more than the rows
_LAST_ID = text("SELECT last_insert_rowid()")
_INDEX_ROWS = text(
    "INSERT INTO log_text_fts (rowid, text) SELECT id, text FROM log_text WHERE id BETWEEN :first AND :last"
)
TRIGRAM = 3  # SQLite's trigram index finds terms of this many characters or more; shorter ones only the LIKE


@dataclass(frozen=True, slots=True)
class LineMatch:
    """The first stored line of a log that holds every term searched for."""

    diagnosis_id: int
    line: int
    text: str


def search_words(text: str) -> list[str]:
    """The terms of a search, lower-cased, split where stored text is: `model=Qwen/Qwen2.5-7B` is the terms
    `model`, `qwen` and `qwen2.5-7b`; `set-3.jsonl` stays one term."""
    return _PART.findall(text.lower())


class _LogTextMatch(ColumnElement[bool]):
    """`log_text` rows holding every term. PostgreSQL: each term starts a part of the text (a GIN index over
    `trainwreck_log_terms`: whole parts and their word-character pieces, so `Qwen2.5` and `Instruct` both
    find `Qwen/Qwen2.5-7B-Instruct`). SQLite: each term anywhere in the text (the rows holding its trigrams, from
    an FTS5 trigram index without positions, then LIKE)."""

    inherit_cache = True
    type = Boolean()

    def __init__(self, words: list[str]) -> None:
        prefixes = " & ".join("'" + word.replace("\\", "\\\\").replace("'", "''") + "':*" for word in words)
        self.tsquery: BindParameter[str] = bindparam("log_search_tsquery", prefixes, unique=True)
        trigrams = " ".join('"' + trigram.replace('"', '""') + '"' for trigram in _trigrams(words))
        self.fts5: BindParameter[str] = bindparam("log_search_fts5", trigrams, unique=True)
        self.has_trigrams = bool(trigrams)
        self.likes = and_(*(LogText.text.ilike("%" + _escaped(word) + "%", escape="\\") for word in words))


def _trigrams(words: list[str]) -> list[str]:
    """Every trigram of the words long enough to have one: the rows that hold them all may hold the words (the
    index stores no positions, so a word is no phrase query; the LIKE confirms each row)."""
    return sorted({word[start : start + TRIGRAM] for word in words for start in range(len(word) - TRIGRAM + 1)})


@compiles(_LogTextMatch, "postgresql")
def _postgresql(element: _LogTextMatch, compiler: SQLCompiler, **kwargs: Any) -> str:
    query = compiler.process(element.tsquery, **kwargs)
    return f"log_text.search_terms @@ CAST({query} AS tsquery)"


@compiles(_LogTextMatch)
def _sqlite(element: _LogTextMatch, compiler: SQLCompiler, **kwargs: Any) -> str:
    likes = compiler.process(element.likes, **kwargs)
    if not element.has_trigrams:
        return likes
    query = compiler.process(element.fts5, **kwargs)
    return f"log_text.id IN (SELECT rowid FROM log_text_fts WHERE log_text_fts MATCH {query}) AND {likes}"


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def log_holds(text: str, diagnosis_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """Whether the diagnosis's stored lines hold every term (one block holding them all): the blocks are
    found through the index first, then their diagnoses."""
    words = search_words(text)
    if not words:
        return false()
    return diagnosis_id.in_(select(LogText.diagnosis_id).where(_LogTextMatch(words)))


def insert_blocks(session: Session, blocks: Iterable[tuple[int, int, str]]) -> None:
    """Store logs' searchable lines, as (diagnosis id, first line number, the lines' text) blocks, each store's
    index filled by one statement: on PostgreSQL the blocks go with their terms; on SQLite the FTS5 table is
    filled from the rows just stored (FTS5 took ~70 µs a row from a trigger)."""
    blocks = list(blocks)
    if not blocks:
        return
    if session.get_bind().dialect.name == "postgresql":
        diagnosis_ids, first_lines, texts = (list(column) for column in zip(*blocks, strict=True))
        terms = [_TERM_SEPARATOR.join(search_terms(lines)) for lines in texts]
        session.execute(_INSERT_WITH_TERMS, {"diagnosis_ids": diagnosis_ids, "first_lines": first_lines,
                                             "texts": texts, "terms": terms, "separator": _TERM_SEPARATOR})
        return
    session.execute(_INSERT, [{"diagnosis_id": diagnosis_id, "first_line": first, "text": lines}
                              for diagnosis_id, first, lines in blocks])
    # the rows just inserted: consecutive ids, as each new id is the highest plus one and the transaction holds
    # SQLite's write lock
    last: int = session.execute(_LAST_ID).scalar_one()
    session.execute(_INDEX_ROWS, {"first": last - len(blocks) + 1, "last": last})


def search_terms(lines: str) -> list[str]:
    """The terms a block of lines holds: its parts and their word pieces, lower-cased (what a search term may
    start), as `trainwreck_log_terms` computes them."""
    lowered = lines.lower()
    terms = set(_PART.findall(lowered))
    terms.update(_WORD_PIECE.findall(lowered))
    return [term for term in terms if len(term.encode()) <= MAX_TERM_BYTES]


def first_matches(session: Session, text: str, diagnosis_ids: Collection[int]) -> dict[int, LineMatch]:
    """For each diagnosis, the first stored line holding every word of the search."""
    words = search_words(text)
    if not words or not diagnosis_ids:
        return {}
    statement = (
        select(LogText.diagnosis_id, LogText.first_line, LogText.text)
        .where(LogText.diagnosis_id.in_(list(diagnosis_ids)), _LogTextMatch(words))
        .order_by(LogText.diagnosis_id, LogText.first_line)
    )
    found: dict[int, LineMatch] = {}
    for diagnosis_id, first_line, block in session.execute(statement):
        if diagnosis_id in found:
            continue
        lines = block.split("\n")
        for wanted in (words, words[:1]):  # every word on one line, else the line of the first word
            at = next((offset for offset, line in enumerate(lines) if all(word in line.lower() for word in wanted)),
                      None)
            if at is not None:
                found[diagnosis_id] = LineMatch(diagnosis_id, first_line + at, lines[at])
                break
    return found
