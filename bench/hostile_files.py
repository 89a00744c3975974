"""Benchmark: `buildflow validate` of every hostile pipeline file (tests/hostile/), each as a whole process.

The corpus is copied to a temporary directory and its big cases generated there (a 20 MB file, 100,000 targets,
10,000 levels of nesting...). Each case runs `--runs` times; its median wall time counts. Reported: cases tried,
how many exited 2, tracebacks and internal errors found, the slowest case, the median, and whether every case
finished within 1 s. Then, apart because it is valid, `buildflow plan --offline` of a pipeline whose context
holds 2,000 files and a .dockerignore of 10,001 patterns, against the same 1 s. Results go to bench/RESULTS.md
between this benchmark's markers.

    python bench/hostile_files.py [--runs 3] [--no-write]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import arguments, buildflow_command, publish

BEGIN, END = "<!-- hostile_files:begin -->", "<!-- hostile_files:end -->"
REPO = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 1.0
HANG_SECONDS = 120
BIG_IGNORE = "dockerignore-10k-patterns"


@dataclass(frozen=True)
class Outcome:
    """What one case did: exit code, median wall time, and whether stderr held a traceback."""

    name: str
    code: int
    seconds: float
    traceback: bool


def run_case(
    command: list[str], directory: Path, file: str, runs: int, verb: tuple[str, ...] = ("validate",)
) -> tuple[int, float, str]:
    """Exit code, median wall time and stderr of `validate -f FILE` (or another verb) run `runs` times."""
    times, code, stderr = [], 0, ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            result = subprocess.run(
                [*command, *verb, "-f", file],
                cwd=directory,
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
                timeout=HANG_SECONDS,
            )
            code, stderr = result.returncode, result.stderr
        except subprocess.TimeoutExpired:
            code, stderr = -1, f"no answer after {HANG_SECONDS} s"
        times.append(time.perf_counter() - start)
    return code, statistics.median(times), stderr


def measure(runs: int) -> list[Outcome]:
    """Run every case of the corpus, copied and generated in a temporary directory."""
    sys.path.insert(0, str(REPO))
    from tests.hostile.generate import materialise, tidy

    command = buildflow_command()
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="buildflow-hostile-") as work:
        corpus = Path(work) / "corpus"
        for case in materialise(corpus):
            code, seconds, stderr = run_case(command, case.directory, case.file, runs)
            outcomes.append(Outcome(case.name, code, seconds, "Traceback" in stderr))
            print(f"{case.name:<36} exit {code}  {seconds:6.3f} s  {stderr.splitlines()[:1]}", file=sys.stderr)
        tidy(corpus)
    return outcomes


def measure_big_ignore(runs: int) -> Outcome:
    """`plan --offline` of a valid pipeline whose context has 2,000 files and 10,001 .dockerignore patterns."""
    sys.path.insert(0, str(REPO))
    from tests.hostile.generate import big_dockerignore

    with tempfile.TemporaryDirectory(prefix="buildflow-ignore-") as work:
        file = big_dockerignore(Path(work))
        code, seconds, stderr = run_case(buildflow_command(), Path(work), file, runs, ("plan", "--offline"))
    print(f"{BIG_IGNORE:<36} exit {code}  {seconds:6.3f} s  {stderr.splitlines()[:1]}", file=sys.stderr)
    return Outcome(BIG_IGNORE, code, seconds, "Traceback" in stderr)


def machine() -> str:
    """A one-line description of the machine (no engine needed)."""
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "unknown CPU")
    python = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {python}"


def _cpuinfo() -> list[str]:
    """The lines of /proc/cpuinfo, or none."""
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def report(outcomes: list[Outcome], runs: int, big: Outcome) -> str:
    """The Markdown section for RESULTS.md."""
    slowest = sorted(outcomes, key=lambda outcome: outcome.seconds, reverse=True)
    over = [outcome for outcome in slowest if outcome.seconds > LIMIT_SECONDS]
    median = statistics.median(outcome.seconds for outcome in outcomes)
    exit_2 = sum(outcome.code == 2 for outcome in outcomes)
    others = [f"{outcome.name} (exit {outcome.code})" for outcome in outcomes if outcome.code != 2]
    lines = [
        BEGIN,
        "## hostile_files: `buildflow validate` of every hostile pipeline file",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Each case of `tests/hostile/` (big ones generated) "
        f"run {runs} times as a whole process (start-up included); the median counts. Reproduce: "
        "`make bench-hostile`.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| cases tried | {len(outcomes)} |",
        f"| exit code 2 | {exit_2} |",
        f"| other exit codes | {', '.join(others) or 'none'} |",
        f"| tracebacks | {sum(outcome.traceback for outcome in outcomes)} |",
        f"| slowest case | {slowest[0].name}: {slowest[0].seconds:.2f} s |",
        f"| median case | {median:.2f} s |",
        f"| every case within {LIMIT_SECONDS:.0f} s | {'yes' if not over else 'no'} |",
    ]
    if over:
        lines += ["", "Over 1 s: " + ", ".join(f"{outcome.name} ({outcome.seconds:.2f} s)" for outcome in over) + "."]
    lines += ["", "The five slowest:", ""]
    lines += [f"- {outcome.name}: {outcome.seconds:.2f} s" for outcome in slowest[:5]]
    lines += _format_note({outcome.name: outcome.seconds for outcome in outcomes})
    lines += _big_ignore_note(big)
    lines.append(END)
    return "\n".join(lines)


def _format_note(seconds: dict[str, float]) -> list[str]:
    """The same 100,000 targets as JSON and as YAML: what the reader costs before any check."""
    if "targets-100k-json" not in seconds or "targets-100k-yaml" not in seconds:
        return []
    return [
        "",
        f"100,000 targets are refused in {seconds['targets-100k-json']:.2f} s from JSON and "
        f"{seconds['targets-100k-yaml']:.2f} s from YAML, where a file over 2 MiB is refused before it is parsed "
        "(PyYAML builds every node of the 2.3 MB file first: 3.6 s before that limit).",
    ]


def _big_ignore_note(big: Outcome) -> list[str]:
    """The valid case timed apart: a big .dockerignore over a big context."""
    within = "yes" if big.code == 0 and big.seconds <= LIMIT_SECONDS else "no"
    return [
        "",
        f"Big .dockerignore ({BIG_IGNORE}, valid, so not a case above): `buildflow plan --offline` of a context of "
        f"2,000 files and 10,001 patterns takes {big.seconds:.2f} s (median, exit {big.code}); within "
        f"{LIMIT_SECONDS:.0f} s: {within}.",
    ]


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=3)
    options = parser.parse_args()
    section = report(measure(options.runs), options.runs, measure_big_ignore(options.runs))
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
