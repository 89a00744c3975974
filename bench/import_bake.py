"""Benchmark: `buildflow init` of a tree of Dockerfiles, and `buildflow import bake` of plan_scale's bake files
followed by `buildflow plan` of the result, beside `docker buildx bake --print` of the same files.

init: a 4-ary tree of N directories, each with a Dockerfile whose FROM names its parent's image by a tag
(`FROM bench/dPARENT:1.0`), so that init must tag every parent for buildflow's inference to find the edge. The
written pipeline must have exactly the tree's edges.

import: the bake file plan_scale.py generates (N targets, parents as `target:` contexts), imported, then planned;
the planned DAG must equal bake's (its `target:` contexts, read from what `bake --print` printed). Every command runs
as a whole process, output to a file; the median is reported. Results go to bench/RESULTS.md between this
benchmark's markers.

    python bench/import_bake.py [--sizes 100,1000,5000] [--init-sizes 100,1000] [--runs 5]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import arguments, buildflow_command, machine, publish
from plan_scale import DOCKERFILE, bake_available, bake_file, median, parent, timed

from buildflow.adopt.bake import bake_edges

BEGIN, END = "<!-- import_bake:begin -->", "<!-- import_bake:end -->"
INIT_TARGET_SECONDS = 1.0  # init of a 100-Dockerfile tree
LOADS: list[float] = []  # the load average before each measurement: these machines are shared


def write_dockerfile_tree(directory: Path, count: int) -> set[tuple[str, str]]:
    """A 4-ary tree of directories d0..dN-1, each FROM its parent's tag; the tree's edges (parent, child)."""
    for index in range(count):
        base = f"bench/d{parent(index)}:1.0" if index else "scratch"
        (directory / f"d{index}").mkdir(parents=True)
        (directory / f"d{index}" / "Dockerfile").write_text(f"FROM {base}\nARG N={index}\nLABEL n=${{N}}\n")
    return {(f"d{parent(index)}", f"d{index}") for index in range(1, count)}


def planned_dag(pipeline: Path) -> tuple[set[str], set[tuple[str, str]]]:
    """The targets, and (parent, child) of every edge, that `buildflow plan --offline --format json` shows."""
    command = [*buildflow_command(), "plan", "--offline", "--format", "json", "-f", str(pipeline)]
    planned = subprocess.run(command, capture_output=True, text=True, check=True)
    targets = json.loads(planned.stdout)["targets"]
    return {target["id"] for target in targets}, {
        (e["id"], target["id"]) for target in targets for e in target["parents"]
    }


def measure_init(count: int, runs: int, work: Path) -> dict[str, float | bool]:
    """Median seconds of `buildflow init` over a tree of `count` Dockerfiles, and whether its edges are the tree's."""
    LOADS.append(os.getloadavg()[0])
    directory = work / f"init{count}"
    expected = write_dockerfile_tree(directory, count)
    seconds = median(timed([*buildflow_command(), "init", ".", "--force"], directory, runs))
    nodes = {f"d{index}" for index in range(count)}
    return {"init": seconds, "equal": planned_dag(directory / "buildflow.yaml") == (nodes, expected)}


def measure_import(count: int, runs: int, work: Path, with_bake: bool) -> dict[str, float | bool | None]:
    """Median seconds of import and of plan of the result; bake --print once (its output gives bake's DAG)."""
    LOADS.append(os.getloadavg()[0])
    directory = work / f"import{count}"
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    (directory / "docker-bake.json").write_text(json.dumps(bake_file(count)))
    command = buildflow_command()
    row: dict[str, float | bool | None] = {
        "import": median(timed([*command, "import", "bake", "docker-bake.json", "--force"], directory, runs)),
        "plan": median(timed([*command, "plan", "--offline"], directory, runs)),
        "bake": None,
    }
    printed: dict[str, Any] = bake_file(count)
    if with_bake:
        start = time.perf_counter()
        bake = ["docker", "buildx", "bake", "-f", "docker-bake.json", "--print"]
        ran = subprocess.run(bake, cwd=directory, capture_output=True, text=True, check=True)
        row["bake"] = time.perf_counter() - start
        printed = json.loads(ran.stdout)
    row["equal"] = planned_dag(directory / "buildflow.yaml") == (set(printed["target"]), bake_edges(printed))
    return row


def report(
    inits: dict[int, dict[str, float | bool]], imports: dict[int, dict[str, float | bool | None]], runs: int
) -> str:
    """The Markdown section for RESULTS.md."""
    lines = [
        BEGIN,
        "## import_bake: `buildflow init` of a tree of Dockerfiles; `buildflow import bake` then `plan`, vs "
        "`docker buildx bake --print`",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {runs} whole-process runs (start-up "
        "included, output to a file); bake --print once per size. Reproduce: `make bench-import`. "
        f"Load average during the run (1 minute, 2 cores): {min(LOADS):.1f} to {max(LOADS):.1f}.",
        "",
        "| Dockerfiles | buildflow init | edges equal to the tree's |",
        "|---:|---:|---|",
    ]
    lines += [f"| {n:,} | {row['init']:.2f} s | {'yes' if row['equal'] else 'NO'} |" for n, row in inits.items()]
    lines += [
        "",
        "| bake targets | buildflow import bake | buildflow plan --offline of the result | import + plan "
        "| bake --print | bake / (import + plan) | DAG equal to bake's |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for count, row in imports.items():
        both = float(row["import"] or 0) + float(row["plan"] or 0)
        bake = row["bake"]
        bake_text, ratio = (f"{bake:.2f} s", f"{float(bake) / both:.1f}x") if bake else ("n/a", "n/a")
        lines.append(
            f"| {count:,} | {row['import']:.2f} s | {row['plan']:.2f} s | {both:.2f} s | {bake_text} | {ratio} "
            f"| {'yes' if row['equal'] else 'NO'} |"
        )
    smallest = min(inits) if inits else 0
    if smallest:
        seconds = float(inits[smallest]["init"])
        verdict = "meets it" if seconds < INIT_TARGET_SECONDS else "misses it"
        lines += [
            "",
            f"Target: init of {smallest:,} Dockerfiles in under {INIT_TARGET_SECONDS:.0f} s: {seconds:.2f} s "
            f"({verdict}).",
        ]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--init-sizes", default="100,1000")
    options = parser.parse_args()
    with_bake = bake_available()
    if not with_bake:
        print("docker buildx not found (run scripts/engine.sh install): bake columns stay empty", file=sys.stderr)
    inits, imports = {}, {}
    with tempfile.TemporaryDirectory(prefix="buildflow-bench-") as work:
        for count in (int(size) for size in options.init_sizes.split(",") if size):
            inits[count] = measure_init(count, options.runs, Path(work))
            print(f"init {count:>6} Dockerfiles: {inits[count]}", file=sys.stderr)
        for count in (int(size) for size in options.sizes.split(",") if size):
            imports[count] = measure_import(count, options.runs, Path(work), with_bake)
            print(f"import {count:>6} targets: {imports[count]}", file=sys.stderr)
    LOADS.append(os.getloadavg()[0])
    publish(report(inits, imports, options.runs), BEGIN, END, write=not options.no_write)
    equal = [row["equal"] for row in inits.values()] + [row["equal"] for row in imports.values()]
    if not all(equal):
        raise SystemExit("a DAG differs from the expected one (see the table)")


if __name__ == "__main__":
    main()
