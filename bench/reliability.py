"""Figures for docs/reliability.md: pushed runs through a registry that fails 30 % of its requests.

Each run builds the four-target hierarchy of tests/integration/test_reliability.py (base -> mid -> leaf, base ->
side) with the real command line, through the loopback fault proxy of tests/faults.py (connection resets, 500,
502, 503, 504, 429 with Retry-After, slow answers; a new seed each run), fifteen tries per call at most 2 s
apart, `--keep-going`. Then the registry itself (not the proxy) is asked whether anything was lost (a BUILT
target whose digest it does not hold) or half-published (a release tag that moved although the run did not
release). Needs `scripts/engine.sh up`.

    python bench/reliability.py [--runs 3]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import arguments, machine, publish

from tests.faults import Faults, faulty_registry
from tests.integration.conftest import make_project, unsafe_outcomes
from tests.integration.test_build import FILES, TREE
from tests.integration.test_reliability import RELEASE_TAGS

BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
RATE = 0.3


@dataclass
class Run:
    """One faulty run and what the registry says of it afterwards."""

    seed: int
    seconds: float
    exit: int
    requests: int
    faults: int
    by_kind: dict[str, int]
    statuses: list[str]
    released: bool
    lost: int
    half_published: int

    def row(self) -> str:
        """The run as a table row."""
        counts = " / ".join(str(self.statuses.count(status)) for status in ("BUILT", "FAILED", "BLOCKED"))
        return (
            f"| {self.seed} | {self.requests} | {self.faults} ({self.faults / self.requests:.0%}) | {counts} | "
            f"{'yes' if self.released else 'no'} | {self.exit} | {self.lost} | {self.half_published} | "
            f"{self.seconds:.0f} s |"
        )


def one_run(work: Path, seed: int) -> Run:
    """Build the hierarchy through the fault proxy, then ask the registry itself what became of it."""
    faults = Faults(rate=RATE, seed=seed, slow_seconds=0.5)
    started = time.monotonic()
    with faulty_registry(faults) as proxy:
        project = make_project(work / f"run{seed}", TREE, FILES, registry=proxy, attempts=15, max_delay=2)
        result = project.build("--timeout", "180", "--keep-going")
    lost, half = unsafe_outcomes(project, proxy, RELEASE_TAGS)
    report = project.report()
    return Run(
        seed=seed,
        seconds=time.monotonic() - started,
        exit=result.returncode,
        requests=faults.seen,
        faults=faults.failed,
        by_kind=dict(faults.by_kind),
        statuses=[target["status"] for target in report["targets"]],
        released=report["released"],
        lost=len(lost),
        half_published=len(half),
    )


def report(runs: list[Run]) -> str:
    """The Markdown section."""
    kinds: dict[str, int] = {}
    for run in runs:
        for kind, count in run.by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + count
    return "\n".join(
        [
            BEGIN,
            "## reliability: pushed runs through a registry that fails 30 % of its requests",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Reproduce: `make bench-reliability`.",
            "",
            "| seed | requests | faults | built / failed / blocked | released | exit | lost | half-published | time |",
            "|---:|---:|---:|---|---|---:|---:|---:|---:|",
            *(run.row() for run in runs),
            "",
            f"Faults by kind over all runs: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}. "
            f"Lost: {sum(run.lost for run in runs)}; half-published: {sum(run.half_published for run in runs)}; "
            "hung: 0 (every run ended).",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="buildflow-faults-") as work:
        runs = []
        for seed in range(1, options.runs + 1):
            runs.append(one_run(Path(work), seed))
            print(f"run {seed}: {runs[-1]}", file=sys.stderr)
    section = report(runs)
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
