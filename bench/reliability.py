"""Figures for docs/reliability.md: pushed runs of a 10-target tree through a registry that fails a share of its
requests, with buildflow's default settings (30 %) and with `--retries 10` (50 %).

Each run builds base -> three children -> six grandchildren (busybox images, release tag `NAME:1` each) with the
real command line, through the loopback fault proxy of tests/faults.py (connection resets, 500, 502, 503, 504,
429 with Retry-After, slow answers; a new seed each run; `--keep-going`). Then the registry itself, not the proxy,
is asked whether anything was lost (a BUILT target whose digest it does not hold) or half-published (a release tag
that moved although the run did not release). Needs `scripts/engine.sh up`.

    python bench/reliability.py [--runs 10]
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
from tests.integration.conftest import BASE, child, make_project, unsafe_outcomes

BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
SETTINGS = ((0.3, ()), (0.5, ("--retries", "10")))  # fault rate, and the options of its runs
MIDS = [f"m{index}" for index in range(3)]
LEAVES = [f"l{index}" for index in range(6)]
TREE = "\n".join(
    ['base: {context: base, tags: ["base:1"]}']
    + [f'{name}: {{context: {name}, from: base, tags: ["{name}:1"]}}' for name in MIDS]
    + [f'{name}: {{context: {name}, from: {MIDS[i % 3]}, tags: ["{name}:1"]}}' for i, name in enumerate(LEAVES)]
)
FILES = {
    "base": BASE,
    **{name: child(name, "base") for name in MIDS},
    **{name: child(name, MIDS[i % 3]) for i, name in enumerate(LEAVES)},
}
RELEASE_TAGS = {name: [f"{name}:1"] for name in ["base", *MIDS, *LEAVES]}


@dataclass
class Run:
    """One faulty run and what the registry says of it afterwards."""

    rate: float
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
            f"| {self.rate:.0%} | {self.seed} | {self.requests} | {self.faults} ({self.faults / self.requests:.0%}) | "
            f"{counts} | {'yes' if self.released else 'no'} | {self.exit} | {self.lost} | {self.half_published} | "
            f"{self.seconds:.0f} s |"
        )


def one_run(work: Path, rate: float, seed: int, options: tuple[str, ...]) -> Run:
    """Build the tree through the fault proxy with default retry settings, then ask the registry what became of it."""
    faults = Faults(rate=rate, seed=seed, slow_seconds=0.5)
    started = time.monotonic()
    with faulty_registry(faults) as proxy:
        project = make_project(work / f"run-{rate}-{seed}", TREE, FILES, registry=proxy)
        pipeline = project.root / "buildflow.yaml"
        lines = pipeline.read_text().splitlines(keepends=True)
        pipeline.write_text("".join(line for line in lines if not line.startswith("retry:")))  # the defaults
        result = project.build("--keep-going", *options)
    lost, half = unsafe_outcomes(project, proxy, RELEASE_TAGS)
    report = project.report()
    return Run(
        rate=rate,
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
    totals = []
    for rate, options in SETTINGS:
        mine = [run for run in runs if run.rate == rate]
        seconds = sorted(run.seconds for run in mine)
        totals.append(
            f"- {rate:.0%} of requests failing, {' '.join(options) or 'default settings'}: "
            f"**{sum(run.released for run in mine)} of {len(mine)} runs released**, "
            f"median {seconds[len(seconds) // 2]:.0f} s (longest {seconds[-1]:.0f} s)."
        )
    return "\n".join(
        [
            BEGIN,
            "## reliability: pushed runs of a 10-target tree through a registry that fails 30 % or 50 % of requests",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Reproduce: `make bench-reliability`.",
            "",
            *totals,
            "",
            "| faults | seed | requests | failed | built / failed / blocked | released | exit | lost | half-published "
            "| time |",
            "|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
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
    parser = arguments(__doc__, runs=10)
    options = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="buildflow-faults-") as work:
        for rate, run_options in SETTINGS:
            for seed in range(1, options.runs + 1):
                runs.append(one_run(Path(work), rate, seed, run_options))
                print(f"run {rate} {seed}: {runs[-1]}", file=sys.stderr)
    publish(report(runs), BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
