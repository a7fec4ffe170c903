"""diagnose(): the one entry point the CLI, the API and the Slack bot all call."""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from itertools import chain, repeat
from pathlib import Path

import msgspec

from app.diagnosis.collectors import Collector, ExceptionCollector, LastException, MarkerCollector, Markers
from app.diagnosis.facts import FactCollector, FactScreen, RunFacts, read_error_facts
from app.diagnosis.frameworks import FrameworkSet, load_framework_set
from app.diagnosis.matcher import Hit, Matcher, ScanState, Screened
from app.diagnosis.model import Diagnosis, Evidence, LossPoint, Remedy, Symptom
from app.diagnosis.progress import Progress, ProgressTracker
from app.diagnosis.reader import (
    LineBlock,
    LogSource,
    count_lines,
    decode_line,
    iter_decompressed,
    iter_whole_lines,
    keep_freed_blocks,
    open_seekable,
    strip_ansi,
)
from app.diagnosis.redact import redact_text
from app.diagnosis.remedies import Circumstances, build_remedies, corrected_command, relevant_parameters
from app.diagnosis.rootcause import RootCause, choose_root_cause, fingerprint
from app.diagnosis.signatures import SignatureSet
from app.diagnosis.stage import StageClassifier, StageVerdict
from app.diagnosis.taxonomy import stage_wording
from app.diagnosis.verification import setting_names_of, verification_command
from app.errors import EmptyLogError

DEFAULT_MAX_DECOMPRESSED_BYTES = 16 * 1024**3
MAX_EVIDENCE_REPEATS = 3
MAX_CURVE_POINTS = 500
SCREEN_AHEAD = 3  # blocks screened ahead of the reasoning: with 4 MB blocks, at most ~16 MB more in memory
TRACEBACK_AFTER_LINES = 200  # how far after the root line a traceback may still be its own
MIN_DUMPED_PARAMETERS = 5  # an argument dump this long shows the run was setting up



ProgressCallback = Callable[[int], None]


class _Scan(msgspec.Struct):
    state: ScanState
    progress: Progress
    facts: RunFacts
    markers: Markers
    last_exception: LastException | None
    last_line: tuple[int, str] | None
    lines: int
    bytes_read: int


class _Headline(msgspec.Struct, frozen=True):
    """What a diagnosis says the failure is, before it is placed in the run."""

    category: str
    signature: str | None
    title: str
    summary: str
    confidence: float
    evidence: list[Evidence]
    fingerprint: str


class Diagnoser:
    """Holds a compiled signature set; diagnose() reads one log in a single streaming pass."""

    def __init__(
        self,
        signature_set: SignatureSet,
        *,
        frameworks: FrameworkSet | None = None,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        cache_dir: Path | None = None,
        screen_workers: int | None = None,
    ) -> None:
        self.signature_set = signature_set
        self.frameworks = frameworks if frameworks is not None else load_framework_set()
        self.max_decompressed_bytes = max_decompressed_bytes
        screen = {
            **ProgressTracker.screens(self.frameworks.step_formats),
            **MarkerCollector.screens(self.frameworks),
            **ExceptionCollector.SCREENS,
        }
        self._matcher = Matcher(signature_set, screen=screen, located=ExceptionCollector.LOCATED,
                                frequent=ProgressTracker.FREQUENT, cache_dir=cache_dir)
        self._fact_screen = FactScreen(self.frameworks.frameworks, cache_dir)
        self._relevant = relevant_parameters(signature_set)
        self._stages = StageClassifier(self.frameworks.frames)
        self._workers = ThreadPoolExecutor(max_workers=screen_workers or min(4, os.cpu_count() or 1),
                                           thread_name_prefix="trainwreck-screen")
        self._launcher_env = self.frameworks.launcher_env()

    @property
    def version(self) -> str:
        """The signature-set version that produces this diagnoser's results."""
        return self.signature_set.version + self.frameworks.version[:4]

    def _verification(self, command: str | None, remedies: list[Remedy]) -> str | None:
        """The run cut down to minutes, keeping the settings the remedies change."""
        if not command:
            return None
        kept = setting_names_of([remedy.parameter for remedy in remedies], frameworks=self.frameworks, text=command)
        return verification_command(command, frameworks=self.frameworks, keep=kept)

    def diagnose(
        self, source: LogSource, *, exit_code: int | None = None, progress: ProgressCallback | None = None
    ) -> Diagnosis:
        """Diagnose one log (path, bytes or binary stream; plain, gzip or zstd)."""
        scan = self._scan(source, progress)
        if scan.last_line is None and scan.last_exception is None and not scan.state.hits:
            raise EmptyLogError("the log is empty: there is nothing to diagnose")
        hits = scan.state.hits + self._loss_hits(scan.progress) + self._exit_hits(exit_code, scan.lines)
        for hit in hits:
            read_error_facts(scan.facts, hit.text)
        cause = choose_root_cause(hits, last_progress_line=scan.progress.step_line)
        return self._build(scan, cause, exit_code)

    def _scan(self, source: LogSource, on_progress: ProgressCallback | None) -> _Scan:
        state = ScanState()
        tracker = ProgressTracker(self.frameworks.step_formats)
        facts = FactCollector(self._relevant, screen=self._fact_screen)
        markers = MarkerCollector(self.frameworks)
        exceptions = ExceptionCollector()
        collectors: list[Collector] = [tracker, facts, markers, exceptions]
        last_line = None
        lines = 0
        bytes_read = 0
        for block, data, screened in self._screened(source):
            self._matcher.confirm(block, data, state, screened)
            fired = screened.screens
            for collector in collectors:
                collector.feed(data, block.first_line, fired)
            lines = block.first_line + block.line_count - 1
            last_line = _last_nonblank_line(data, lines) or last_line
            bytes_read += len(block.data)
            if on_progress is not None:
                on_progress(bytes_read)
        run_facts = facts.finish()
        stated_total = run_facts.lookup(self.frameworks.total_steps_settings())
        total = stated_total[1] if stated_total and isinstance(stated_total[1], int) and stated_total[1] > 0 else None
        progress = tracker.finish(stated_total=total)
        return _Scan(state, progress, run_facts, markers.finish(after_line=progress.step_line or 0),
                     exceptions.finish(), last_line, lines, bytes_read)

    def _screened(self, source: LogSource) -> Iterator[tuple[LineBlock, bytes, Screened]]:
        """Blocks, numbered, with ANSI codes removed and the screen's verdict, in order: read, counted and screened
        SCREEN_AHEAD blocks ahead in the diagnoser's worker threads (reading a file and Hyperscan release the
        GIL). A plain log is read by the workers themselves, each block at its own offset; a compressed log or
        a stream is read here, in order, and handed to them."""
        with open_seekable(source, max_bytes=self.max_decompressed_bytes) as seekable:
            if seekable is not None:
                reads: Iterator[bytes | Callable[[], bytes]] = (partial(seekable.block, index)
                                                                for index in range(seekable.block_count))
            else:
                reads = iter_whole_lines(iter_decompressed(source, max_bytes=self.max_decompressed_bytes))
            ahead: deque[Future[tuple[bytes, bytes, Screened, int]]] = deque()
            line = 1
            try:
                # after the last read, as many turns again with none, to take the blocks still in flight
                for index, read in enumerate(chain(reads, repeat(None, SCREEN_AHEAD + 1))):
                    if read is not None:
                        if index == 2:  # a third block: the log is big enough for the allocator to keep blocks
                            keep_freed_blocks()
                        ahead.append(self._workers.submit(self._screen_block, read))
                    if len(ahead) > SCREEN_AHEAD or (read is None and ahead):
                        raw, data, screened, count = ahead.popleft().result()
                        if raw:  # a block of a plain log in which no line begins is empty
                            yield LineBlock(raw, line, count), data, screened
                            line += count
            finally:
                for future in ahead:  # a diagnosis stopped early (a deadline, an unreadable block) reads no further
                    future.cancel()
                wait(ahead)

    def _screen_block(self, block: bytes | Callable[[], bytes]) -> tuple[bytes, bytes, Screened, int]:
        """A block, read here when it is a read of a plain log's block, screened and its lines counted."""
        if callable(block):
            block = block()
        data = strip_ansi(block)
        return block, data, self._matcher.screen(data), count_lines(block)

    def _loss_hits(self, progress: Progress) -> list[Hit]:
        """Divergence read from the loss values themselves, as hits of the signatures derived from them."""
        hits = []
        for evidence, event in (("loss_nan", progress.first_bad_loss), ("loss_divergence", progress.divergence)):
            if event is not None and (signature := self.signature_set.derived_from(evidence)):
                hits.append(Hit(signature=signature, line=event.line, text=event.text))
        return hits

    def _exit_hits(self, exit_code: int | None, last_line: int) -> list[Hit]:
        """The job's exit status as the caller saw it: evidence for logs that simply stop."""
        if exit_code is None:
            return []
        signature = self.signature_set.for_exit_status(exit_code)
        if signature is None:
            return []
        return [Hit(signature=signature, line=max(last_line, 1), text=f"(the job exited with status {exit_code})")]

    def _build(self, scan: _Scan, cause: RootCause, exit_code: int | None) -> Diagnosis:
        root = cause.root
        progress = scan.progress
        divergence_step = None
        derived = root.signature.spec.derived_from if root is not None else None
        if derived is not None:
            event = progress.first_bad_loss if derived == "loss_nan" else progress.divergence
            divergence_step = event.point.step if event is not None else None
        setup_shown = (
            scan.facts.command is not None
            or len(scan.facts.parameters) >= MIN_DUMPED_PARAMETERS
            or (scan.markers.first_setup_line is not None
                and (root is None or scan.markers.first_setup_line < root.line))
        )
        last = scan.last_exception
        root_line = last.line if last is not None else None  # no signature: the last exception places it
        root_context = last.context if last is not None else ""
        if root is not None:
            root_line, root_context = root.line, root.context
            after = last.line - root.line if last is not None else 0
            unplaced = self._stages.frame_kind(root_context) is None
            if last is not None and 0 < after <= TRACEBACK_AFTER_LINES and unplaced:
                # a warning line first and the traceback after it, or a chained exception whose final
                # traceback is the one that shows where the run was
                root_context = last.context
        verdict = self._stages.classify(
            root_line=root_line,
            root_context=root_context,
            signature_stage=root.signature.spec.stage if root is not None else None,
            progress=progress,
            save_marker_lines=scan.markers.save_lines,
            divergence_step=divergence_step,
            setup_shown=setup_shown,
            collective_sequence=self.frameworks.collective_sequence(root.text) if root is not None else None,
        )
        if verdict.stage == "checkpoint" and verdict.step is None and root is not None:
            saved = self.frameworks.checkpoint_step(f"{root_context[-2000:]}\n{root.text}")
            verdict = StageVerdict("checkpoint", saved) if saved is not None else verdict
        if root is None:
            headline = self._unknown(scan, exit_code)
            remedies: list[Remedy] = []
        else:
            circumstances = Circumstances(
                during_eval=self._stages.during_evaluation(root.context),
                during_save=verdict.stage == "checkpoint",
                during_load=verdict.stage == "load",
                allocation_exceeds_gpu=_allocation_exceeds_gpu(scan.facts),
            )
            framework = self.frameworks.by_id(scan.facts.framework)
            spellings = framework.spec.spellings if framework is not None else ()
            remedies = build_remedies(root.signature, scan.facts, circumstances=circumstances, spellings=spellings,
                                      error_text=root.text, error_context=root_context)
            spec = root.signature.spec
            headline = _Headline(
                category=spec.category,
                signature=spec.id,
                title=spec.title,
                summary=_summary(root, verdict.stage, verdict.step, progress.total_steps, cause,
                                 during_eval=circumstances.during_eval),
                confidence=_confidence(root, scan.state.hits),
                evidence=_evidence(root, scan),
                fingerprint=fingerprint(spec.category, spec.id, root.text, framework=scan.facts.framework),
            )
        corrected = corrected_command(scan.facts.command, remedies, launcher_env=self._launcher_env)
        return Diagnosis(
            category=headline.category,
            stage=verdict.stage,
            step=verdict.step,
            total_steps=progress.total_steps,
            signature=headline.signature,
            title=headline.title,
            summary=headline.summary,
            confidence=headline.confidence,
            evidence=headline.evidence,
            symptoms=[Symptom(hit.signature.id, hit.signature.category, hit.line) for hit in cause.symptoms],
            remedies=remedies,
            run=scan.facts.to_dict(self._relevant),
            fingerprint=headline.fingerprint,
            corrected_command=corrected,
            verification_command=self._verification(corrected or scan.facts.command, remedies) if root else None,
            loss_curve=_thin_curve(progress.loss_curve),
            signature_set_version=self.version,
            stage_reason=verdict.reason or None,
            warnings=list(dict.fromkeys(scan.state.warnings)),
            lines_read=scan.lines,
            bytes_read=scan.bytes_read,
        )

    def _unknown(self, scan: _Scan, exit_code: int | None) -> _Headline:
        line = (scan.last_exception.line, scan.last_exception.text) if scan.last_exception else scan.last_line
        evidence = [Evidence(line=line[0], text=redact_text(line[1]))] if line else []
        if scan.lines == 0:
            summary = "The log is empty: there is nothing to diagnose."
        elif scan.last_exception:
            summary = (
                "No known signature matched. The last error the log shows is quoted below; "
                "repeats of the same error are grouped under one fingerprint."
            )
        else:
            status = f" with status {exit_code}" if exit_code is not None else ""
            summary = (
                f"No known signature matched and the log shows no error: the run stopped{status} without saying why."
            )
        return _Headline(
            category="unknown",
            signature=None,
            title="Unknown failure" if scan.lines else "Empty log",
            summary=summary,
            confidence=0.2 if scan.last_exception else 0.05,
            evidence=evidence,
            fingerprint=fingerprint("unknown", None, line[1] if line else ""),
        )


def _last_nonblank_line(data: bytes, last_line_number: int) -> tuple[int, str] | None:
    end = len(data)
    number = last_line_number
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        text = decode_line(data[start:end])
        if text.strip():
            return number, text.replace("\x00", "")[:2000]
        end = start
        number -= 1
        if number < last_line_number - 50:
            return None
    return None


def _allocation_exceeds_gpu(facts: RunFacts) -> bool:
    """Whether one allocation asked for more than the whole card holds (an attention matrix, a logits tensor)."""
    tried, total = facts.tried_to_allocate_gib, facts.gpu_memory_gib
    return tried is not None and total is not None and tried > total


def _evidence(root: Hit, scan: _Scan) -> list[Evidence]:
    evidence = [Evidence(line=root.line, text=redact_text(root.text))]
    repeats = [hit for hit in scan.state.hits if hit.signature is root.signature and hit.line != root.line]
    for hit in repeats[: MAX_EVIDENCE_REPEATS - 1]:
        evidence.append(Evidence(line=hit.line, text=redact_text(hit.text)))
    if root.text.startswith("(the job exited") and scan.last_line is not None:
        evidence = [Evidence(line=scan.last_line[0], text=redact_text(scan.last_line[1]))]
    return sorted(evidence, key=lambda item: item.line)


def _confidence(root: Hit, hits: list[Hit]) -> float:
    priority = root.signature.spec.priority
    cause = root.signature.spec.role == "cause"
    value = 0.55 + priority * 0.004 if cause else 0.35 + priority * 0.003
    if sum(1 for hit in hits if hit.signature is root.signature) > 1:
        value += 0.03
    return round(min(value, 0.97), 2)


def _summary(
    root: Hit, stage: str, step: int | None, total: int | None, cause: RootCause, *, during_eval: bool
) -> str:
    spec = root.signature.spec
    where = stage_wording(stage).sentence
    if during_eval and stage in ("early", "mid_run"):
        where += ", during evaluation"
    if step is not None:
        where += f", at step {step}" + (f" of {total}" if total else "")
    sentences = [" ".join(spec.explanation.split()), f"The run died {where}."]
    if spec.category == "nccl_timeout":
        sentences.append(_timeout_story(stage, cause))
    return " ".join(sentences)


def _timeout_story(stage: str, cause: RootCause) -> str:
    """Tell a timeout after a slow save or eval from one after a rank died or hung."""
    died = [hit for hit in cause.symptoms if hit.signature.category in ("host_oom", "segfault", "shm_bus_error")]
    if stage == "checkpoint":
        return ("One rank was still writing a checkpoint when the others gave up waiting: the timeout follows a slow "
                "save, not a crashed rank. Make saving faster (local disk, fewer shards) or raise the timeout.")
    if died:
        return (f"A rank died first ({died[0].signature.spec.title.lower()}, line {died[0].line}); the others timed "
                "out waiting for it.")
    return ("No rank reported an error before the timeout: one rank hung or fell behind (slow data loading, uneven "
            "batches, a collective the others never reached).")


def _thin_curve(points: list[LossPoint]) -> list[LossPoint]:
    """At most MAX_CURVE_POINTS points, always keeping the non-finite ones."""
    if len(points) <= MAX_CURVE_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_CURVE_POINTS)
    return [point for index, point in enumerate(points) if index % stride == 0 or not math.isfinite(point.loss)]
