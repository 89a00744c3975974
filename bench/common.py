"""What the benchmarks share: the command under test, the machine, and RESULTS.md."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

RESULTS = Path(__file__).with_name("RESULTS.md")
Round = TypeVar("Round")


def buildflow_command() -> list[str]:
    """The installed console script next to this Python."""
    script = Path(sys.executable).with_name("buildflow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "buildflow"]


def machine() -> str:
    """A one-line description of the machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    bake = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, check=False).stdout.strip()
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {bake.split()[1] if bake else 'no buildx'}"
    )


def write_results(section: str, begin: str, end: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections stay)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        before, _, rest = text.partition(begin)
        text = before + section + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def arguments(doc: str | None, runs: int) -> argparse.ArgumentParser:
    """The options every benchmark takes, --runs and --no-write; a benchmark may add its own."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--no-write", action="store_true", help="print the results without touching RESULTS.md")
    return parser


def publish(section: str, begin: str, end: str, *, write: bool) -> None:
    """Print a benchmark's section and, unless --no-write was given, put it in RESULTS.md."""
    print(section)
    if write:
        write_results(section, begin, end)


def repeated(runs: int, one_round: Callable[[Path], Round], prefix: str) -> list[Round]:
    """one_round(work) `runs` times in one temporary directory, each result printed (stderr) as it comes."""
    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as work:
        for number in range(runs):
            results.append(one_round(Path(work)))
            print(f"round {number + 1}: {results[-1]}", file=sys.stderr)
    return results


def medians(rounds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The median of each measurement over the rounds."""
    return {key: statistics.median(one[key] for one in rounds) for key in rounds[0]}
