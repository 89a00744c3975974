"""Benchmark: a re-run of the 21-target tree with nothing changed, beside a warm `docker buildx bake`.

The tree of build_tree.py (21 targets, each `RUN ... sleep 2`), built once by each tool outside the
measurements. Then, alternating: `buildflow build` with everything up to date (every target REUSED from the
registry, nothing sent to BuildKit) and `docker buildx bake` of the same tree, fully cached, pushing.
Needs `scripts/engine.sh up`. Results go to bench/RESULTS.md between this benchmark's markers.

    python bench/noop_rerun.py [--runs 5]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from build_tree import prepare_base, timed, write_tree
from common import arguments, buildflow_command, machine, medians, publish
from plan_scale import compile_buildflow, interpreter

BEGIN, END = "<!-- noop_rerun:begin -->", "<!-- noop_rerun:end -->"
TARGET_RATIO = 1 / 15  # issue 16: at most a fifteenth of a warm bake
REFERENCE_BAKE = (5.0, 5.4)  # a warm bake of this tree in shared/ENVIRONMENT.md, seconds
SETTLE_SECONDS = 10.0  # before each measured run: dockerd and containerd finish what the last one left


def rounds(directory: Path, count: int) -> list[dict[str, float]]:
    """Cold builds first (not measured), then `count` alternating no-op re-runs of each tool."""
    buildflow = [*buildflow_command(), "build", "-f", "pipeline.json", "--jobs", "16", "--progress", "plain"]
    bake = ["docker", "buildx", "bake", "-f", "docker-bake.json", "--progress", "plain"]
    timed(buildflow, directory)
    timed(bake, directory)
    measured = []
    for number in range(count):
        report = directory / "report.json"
        time.sleep(SETTLE_SECONDS)
        row = {"buildflow": timed([*buildflow, "--report", str(report)], directory)}
        time.sleep(SETTLE_SECONDS)
        row["bake"] = timed(bake, directory)
        statuses = {target["status"] for target in json.loads(report.read_text())["targets"]}
        if statuses != {"REUSED"}:
            raise SystemExit(f"round {number + 1}: buildflow did not reuse everything: {statuses}")
        measured.append(row)
        print(f"round {number + 1}: {row}", file=sys.stderr)
    return measured


def report(measured: list[dict[str, float]], load: tuple[float, float]) -> str:
    """The Markdown section."""
    median = medians(measured)
    ratio = median["buildflow"] / median["bake"]
    return "\n".join(
        [
            BEGIN,
            "## noop_rerun: the 21-target tree re-run with nothing changed vs a warm `docker buildx bake`",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()} ({interpreter()}). Load average "
            f"{load[0]:.1f} before, {load[1]:.1f} after (2 cores). Median of {len(measured)} alternating "
            f"rounds after one cold build by each tool, {SETTLE_SECONDS:.0f} s of quiet before each measured run. "
            "buildflow finds every target's image and build record "
            "in the registry (REUSED: no BuildKit call) and re-applies the release tags; bake sends every target "
            "through BuildKit, fully cached, and pushes. Reproduce: `make bench-noop`.",
            "",
            "| | seconds | / bake |",
            "|---|---:|---:|",
            f"| buildflow build (all REUSED) | {median['buildflow']:.2f} | {ratio:.3f} |",
            f"| docker buildx bake --push (warm) | {median['bake']:.2f} | 1.000 |",
            "",
            f"Target: at most 1/15 ({TARGET_RATIO:.3f}) of bake's time: {ratio:.3f} "
            f"({'meets' if ratio <= TARGET_RATIO else 'misses'} it). Against the warm bake of "
            f"shared/ENVIRONMENT.md ({REFERENCE_BAKE[0]}–{REFERENCE_BAKE[1]} s on these machines), buildflow's "
            f"{median['buildflow']:.2f} s is {median['buildflow'] / REFERENCE_BAKE[1]:.3f}–"
            f"{median['buildflow'] / REFERENCE_BAKE[0]:.3f}.",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=5)
    options = parser.parse_args()
    prepare_base()
    compile_buildflow()
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="buildflow-noop-") as work:
        nonce = uuid.uuid4().hex
        directory = Path(work) / nonce
        write_tree(directory, f"bench-noop-{nonce[:8]}", nonce)
        measured = rounds(directory, options.runs)
    section = report(measured, (before, os.getloadavg()[0]))
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
