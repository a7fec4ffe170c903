"""Throughput and peak memory of `trainwreck diagnose` on every log shape, beside grep, cat and wc -l.

    .venv/bin/python bench/bench_diagnose.py [--sizes 50 300 1024] [--shapes ...] [--runs 3]

For each shape of bench/make_log.py and each size, times in the same run and on the same file:
  * `cat` and `wc -l`: the I/O floor
  * `LC_ALL=C grep -E -c -f bench/crash_patterns.txt` (40 crash patterns; output to a file, since GNU
    grep stops at the first match when it writes to /dev/null)
  * `trainwreck diagnose --json` as a fresh process, start-up included
and prints MB/s, the ratio to grep and the peak RSS of each, then the worst and the median ratio.
Every diagnosis is checked: the OOM at the end must be found. The package's bytecode is compiled first, as
pip compiles an installed package's, so a start-up is measured as a user's is.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.make_log import SHAPES, write_log

PATTERNS = Path(__file__).with_name("crash_patterns.txt")


def measure_child(
    command: list[str], env: dict[str, str] | None = None, *, keep_output: bool = False
) -> tuple[float, int, bytes]:
    """Run one command in a fresh child and read its own rusage (peak RSS) via wait4.

    Output goes to a file and is read back only when asked for: a benchmark process that held `cat`'s
    output would hand its own size to every child it spawns after (their peak RSS starts there).
    """
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
        return elapsed, usage.ru_maxrss * 1024, out.read() if keep_output else b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 300], help="log sizes in MB")
    parser.add_argument("--shapes", nargs="+", default=sorted(SHAPES), choices=sorted(SHAPES))
    parser.add_argument("--runs", type=int, default=3, help="best of N runs for each tool")
    args = parser.parse_args()
    compileall.compile_dir(Path(__file__).resolve().parents[1] / "app", quiet=1)
    env = {**os.environ, "LC_ALL": "C"}
    trainwreck = str(Path(sys.executable).with_name("trainwreck"))
    tools = {
        "cat": lambda log, out: ["cat", str(log)],
        "wc -l": lambda log, out: ["wc", "-l", str(log)],
        "grep -E -c -f (40)": lambda log, out: [shutil.which("grep") or "grep", "-E", "-c", "-f", str(PATTERNS),
                                                str(log)],
        "trainwreck": lambda log, out: [trainwreck, "diagnose", "--json", str(log)],
    }
    ratios: list[tuple[float, str]] = []
    print(f"{'shape':<28}{'MB':>6}" + "".join(f"{name + ' MB/s':>24}" for name in tools) + f"{'ratio':>8}{'RSS MB':>8}")
    with tempfile.TemporaryDirectory(prefix="trainwreck-bench-") as scratch:
        for shape in args.shapes:
            for size in args.sizes:
                log = Path(scratch) / f"{shape}-{size}.log"
                write_log(log, size_bytes=size << 20, shape=shape)
                size_mb = log.stat().st_size / (1 << 20)
                measure_child(["cat", str(log)], env)  # warm the page cache
                seconds: dict[str, float] = {}
                peak = 0
                for name, command in tools.items():
                    results = [measure_child(command(log, scratch), env, keep_output=name == "trainwreck")
                               for _ in range(args.runs)]
                    seconds[name] = min(result[0] for result in results)
                    if name == "trainwreck":
                        peak = max(result[1] for result in results)
                        diagnosis = json.loads(results[-1][2])
                        if diagnosis["category"] != "gpu_oom":
                            raise SystemExit(f"{shape}: diagnosed {diagnosis['category']}, not the OOM")
                ratio = seconds["grep -E -c -f (40)"] / seconds["trainwreck"]
                ratios.append((ratio, f"{shape} {size} MB"))
                print(f"{shape:<28}{size_mb:6.0f}" + "".join(f"{size_mb / seconds[name]:24.0f}" for name in tools)
                      + f"{ratio:8.2f}{peak / (1 << 20):8.0f}", flush=True)
                log.unlink()
    worst = min(ratios)
    print(f"ratio trainwreck / grep: worst {worst[0]:.2f}x ({worst[1]}), median "
          f"{statistics.median(ratio for ratio, _ in ratios):.2f}x")


if __name__ == "__main__":
    main()
