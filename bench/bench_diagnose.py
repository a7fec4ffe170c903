"""Throughput and peak memory of `trainwreck diagnose` beside `grep -E -c -f` with the same patterns.

    .venv/bin/python bench/bench_diagnose.py [--size-mb 1024] [--keep]

Generates a realistic multi-rank log (tqdm bars redrawn with \\r, loss dicts, INFO lines on four
ranks, an OOM and its NCCL cascade at the end), then times, in the same run and on the same file:
  * `LC_ALL=C grep -E -c -f patterns` with every signature pattern grep can parse (translated to ERE)
  * `trainwreck diagnose --json` (a fresh process: start-up and signature compilation included)
and prints MB/s, the ratio to grep, and the peak RSS of each process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.diagnosis.signatures import load_signature_set
from bench.make_log import write_log

_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\(\?>|\\[1-9]|\(\?P=|\\g<|\\[AZzG]|\(\?[a-z]+:")
_TRANSLATIONS = [
    (r"\d", "[0-9]"), (r"\D", "[^0-9]"), (r"\s", "[[:space:]]"), (r"\S", "[^[:space:]]"),
    (r"\w", "[[:alnum:]_]"), (r"\W", "[^[:alnum:]_]"), ("(?:", "("),
]


def to_ere(pattern: str) -> tuple[str, bool] | None:
    """The pattern as POSIX ERE for grep, and whether it is case-insensitive; None when grep cannot."""
    caseless = pattern.startswith("(?i)")
    body = pattern[4:] if caseless else pattern
    if _UNSUPPORTED.search(body) or "(?" in body.replace("(?:", ""):
        return None
    for old, new in _TRANSLATIONS:
        body = body.replace(old, new)
    body = re.sub(r"([*+?}])\?", r"\1", body)  # lazy quantifiers: grep only counts lines anyway
    return body, caseless


def measure_child(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """Run one command in a fresh child and read its own rusage (peak RSS) via wait4."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.posix_spawnp(command[0], command, env or dict(os.environ),
                              file_actions=[(os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                            (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise SystemExit(f"{command[0]} exited {code}: {err.read().decode(errors='replace')[:500]}")
        return elapsed, usage.ru_maxrss * 1024, out.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs for each tool")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="trainwreck-bench-"))
    log = workdir / "train.log"
    print(f"generating a {args.size_mb} MB log ...", flush=True)
    write_log(log, size_bytes=args.size_mb << 20)
    size_mb = log.stat().st_size / (1 << 20)

    patterns = [pattern for signature in load_signature_set().signatures for pattern in signature.spec.patterns]
    translated = [to_ere(pattern) for pattern in patterns]
    sensitive = [body for item in translated if item and not item[1] for body in [item[0]]]
    caseless = [body for item in translated if item and item[1] for body in [item[0]]]
    (workdir / "sensitive.txt").write_text("\n".join(sensitive) + "\n")
    (workdir / "caseless.txt").write_text("\n".join(caseless) + "\n")
    grep = shutil.which("grep") or "grep"
    trainwreck = str(Path(sys.executable).with_name("trainwreck"))
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def best(command: list[str]) -> tuple[float, int]:
        results = [measure_child(command, env) for _ in range(args.runs)]
        return min(result[0] for result in results), max(result[1] for result in results)

    grep_seconds = 0.0
    grep_peak = 0
    for name, extra in (("sensitive.txt", []), ("caseless.txt", ["-i"])):
        seconds, peak = best([grep, "-E", "-c", *extra, "-f", str(workdir / name), str(log)])
        grep_seconds += seconds
        grep_peak = max(grep_peak, peak)
    ours_seconds, ours_peak = best([trainwreck, "diagnose", "--json", str(log)])

    skipped = len(patterns) - len(sensitive) - len(caseless)
    print(f"log: {size_mb:,.0f} MB; signature patterns: {len(patterns)}, of which grep -E runs "
          f"{len(sensitive) + len(caseless)} ({len(caseless)} with -i; {skipped} left out: lookaround or "
          "backreferences grep -E lacks)")
    print(f"{'tool':<34}{'seconds':>9}{'MB/s':>9}{'peak RSS MB':>13}")
    print(f"{'LC_ALL=C grep -E -c -f (2 passes)':<34}{grep_seconds:9.2f}{size_mb / grep_seconds:9.0f}"
          f"{grep_peak / (1 << 20):13.1f}")
    print(f"{'trainwreck diagnose --json':<34}{ours_seconds:9.2f}{size_mb / ours_seconds:9.0f}"
          f"{ours_peak / (1 << 20):13.1f}")
    print(f"throughput ratio trainwreck / grep: {grep_seconds / ours_seconds:.2f}x")
    if args.keep:
        print(f"log kept at {log}")
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
