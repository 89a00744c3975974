"""Benchmark: `buildflow validate` and `plan` of a generated 4-ary tree of N targets sharing one context, beside
`bake --print`.

Each size is generated once as a buildflow pipeline (YAML, as people write them, and the same pipeline as JSON, as
generated pipelines usually are) and as the equivalent docker-bake.json (parents as `target:` contexts). Every
command runs as a whole process with its output sent to a file, several times; the median wall time is reported,
and the peak memory (maximum resident set) of the largest plan. "First read" runs have BUILDFLOW_FILE_CACHE=0 (the
file is read and checked as if never seen); the others re-run on a file buildflow has read before. buildflow's
modules are compiled to bytecode first, as an installed wheel has them. Results go to bench/RESULTS.md between
this benchmark's markers.

    python bench/plan_scale.py [--sizes 21,100,1000,5000] [--runs 5]
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from common import arguments, buildflow_command, machine, publish

import buildflow

BEGIN, END = "<!-- plan_scale:begin -->", "<!-- plan_scale:end -->"
TARGET_SECONDS = 0.5
WANTED_RATIO = 30
SMALL, SMALL_RUNS = 100, 3  # up to SMALL targets, SMALL_RUNS times the runs
DOCKERFILE = "ARG BASE_IMAGE=scratch\nFROM ${BASE_IMAGE}\nARG N\nLABEL n=${N}\n"


def parent(index: int) -> int:
    """The parent of a node in a 4-ary tree numbered breadth first."""
    return (index - 1) // 4


def buildflow_pipeline(count: int) -> dict[str, object]:
    """The tree as a buildflow pipeline: one shared context, a build arg and a tag per target."""
    targets: dict[str, object] = {}
    for index in range(count):
        target: dict[str, object] = {"args": {"N": str(index)}, "tags": [f"t{index}:latest"]}
        if index:
            target["from"] = f"t{parent(index)}"
        targets[f"t{index}"] = target
    return {"version": 1, "registry": "localhost:5000/bench", "defaults": {"context": "ctx"}, "targets": targets}


def bake_file(count: int) -> dict[str, object]:
    """The same tree for docker buildx bake: parents as named `target:` contexts."""
    targets: dict[str, object] = {}
    for index in range(count):
        target: dict[str, object] = {
            "context": "ctx",
            "dockerfile": "Dockerfile",
            "args": {"N": str(index)},
            "tags": [f"localhost:5000/bench/t{index}:latest"],
        }
        if index:
            target["args"] = {"N": str(index), "BASE_IMAGE": "parent"}
            target["contexts"] = {"parent": f"target:t{parent(index)}"}
        targets[f"t{index}"] = target
    return {"group": {"default": {"targets": list(targets)}}, "target": targets}


def write_yaml(path: Path, document: dict[str, object]) -> None:
    """The pipeline in block-style YAML, as a person would write it."""
    import yaml

    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


def timed(command: list[str], cwd: Path, runs: int, environment: dict[str, str] | None = None) -> list[Run]:
    """Wall seconds and peak memory of `runs` runs of a whole command, output to a file."""
    measured = []
    for _ in range(runs):
        with (cwd / "out.txt").open("w") as output:
            start = time.perf_counter()
            process = subprocess.Popen(
                command, cwd=cwd, stdout=output, stderr=subprocess.PIPE, env={**os.environ, **(environment or {})}
            )
            _, status, usage = os.wait4(process.pid, 0)
            measured.append(Run(time.perf_counter() - start, usage.ru_maxrss / 1024))
            errors = process.stderr.read().decode() if process.stderr else ""
            process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {errors[-500:]}")
    return measured


class Run(NamedTuple):
    """One whole process: wall seconds and peak resident memory in MiB."""

    seconds: float
    peak_mib: float


def median(runs: list[Run]) -> float:
    """The median wall time."""
    return statistics.median(run.seconds for run in runs)


def bake_available() -> bool:
    """True when `docker buildx bake` can run (scripts/engine.sh install provides it)."""
    return (
        bool(shutil.which("docker"))
        and subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    )


COLUMNS = {
    "validate_first": "validate, first read",
    "validate": "validate",
    "table": "plan",
    "first": "plan --format json, first read",
    "yaml": "plan --format json",
    "json": "plan --format json, JSON file",
    "bake": "bake --print",
}
NO_CACHE = {"BUILDFLOW_FILE_CACHE": "0"}


def measure(count: int, runs: int, work: Path, with_bake: bool) -> dict[str, float | None]:
    """Median seconds of each command at one size, and the peak memory of the JSON plan of the YAML file."""
    directory = work / f"n{count}"
    runs = runs * SMALL_RUNS if count <= SMALL else runs  # start-up sized runs: more of them, as they vary more
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    pipeline = buildflow_pipeline(count)
    (directory / "pipeline.json").write_text(json.dumps(pipeline))
    write_yaml(directory / "pipeline.yaml", pipeline)
    (directory / "docker-bake.json").write_text(json.dumps(bake_file(count)))
    command = buildflow_command()
    plan = [*command, "plan", "--offline", "-f"]
    timed([*plan, "pipeline.yaml"], directory, 1)  # read once: the re-runs below find it read before
    timed([*plan, "pipeline.json"], directory, 1)
    first = timed([*plan, "pipeline.yaml", "--format", "json"], directory, runs, NO_CACHE)
    again = timed([*plan, "pipeline.yaml", "--format", "json"], directory, runs)
    row: dict[str, float | None] = {
        "validate_first": median(timed([*command, "validate", "-f", "pipeline.yaml"], directory, runs, NO_CACHE)),
        "validate": median(timed([*command, "validate", "-f", "pipeline.yaml"], directory, runs)),
        "table": median(timed([*plan, "pipeline.yaml"], directory, runs)),
        "first": median(first),
        "yaml": median(again),
        "json": median(timed([*plan, "pipeline.json", "--format", "json"], directory, runs)),
        "bake": None,
        "first_mib": max(run.peak_mib for run in first),
        "again_mib": max(run.peak_mib for run in again),
    }
    if with_bake:
        bake_runs = runs if count <= 1000 else 1
        bake = ["docker", "buildx", "bake", "-f", "docker-bake.json", "--print"]
        row["bake"] = median(timed(bake, directory, bake_runs))
    return row


def report(rows: dict[int, dict[str, float | None]], runs: int, load: tuple[float, float]) -> str:
    """The Markdown section for RESULTS.md."""
    lines = [
        BEGIN,
        "## plan_scale: `buildflow validate` and `plan --offline` of a generated 4-ary tree vs `docker buildx bake "
        "--print`",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()} ({interpreter()}). Median of {runs} whole-process "
        f"runs ({runs * SMALL_RUNS} up to {SMALL} targets; start-up included, output to a file); bake at 5,000 "
        "targets once. `--offline`, since `bake --print` asks no registry either. The YAML file unless said; "
        "*first read*: BUILDFLOW_FILE_CACHE=0, the file read and "
        "checked as never seen before, nothing replayed; the other buildflow columns re-run the same command on "
        "unchanged files, which the answer cache of docs/cli.md answers (its inputs checked, its output replayed, "
        f"no click or pipeline code loaded). Load average {load[0]:.1f} before, {load[1]:.1f} after (2 cores). "
        "Reproduce: `make bench-plan`.",
        "",
        "| targets | "
        + " | ".join(COLUMNS.values())
        + " | bake / validate, first read | bake / validate | bake / plan | bake / plan json, first read |",
        "|---:|" + "---:|" * (len(COLUMNS) + 4),
    ]
    for count, row in rows.items():
        cells = [f"{row[key]:.3f} s" if row[key] else "n/a" for key in COLUMNS]
        bake = row["bake"]
        keys = ("validate_first", "validate", "table", "first")
        ratios = [f"{bake / (row[key] or 1):.1f}x" if bake else "n/a" for key in keys]
        lines.append(f"| {count:,} | " + " | ".join(cells + ratios) + " |")
    lines += ["", _verdict(rows), END]
    return "\n".join(lines)


def interpreter() -> str:
    """The Python running buildflow: its path and version."""
    return f"{os.path.realpath(sys.executable)} {sys.version.split()[0]}"


def _verdict(rows: dict[int, dict[str, float | None]]) -> str:
    """The target (0.5 s where bake takes 15.6 s, and at least 30x bake), the peak memory, and the small tree."""
    largest = max(rows)
    first, again, bake = rows[largest]["first"] or 0.0, rows[largest]["yaml"] or 0.0, rows[largest]["bake"]
    verdict = (
        f"Target: {largest:,} targets, `plan --offline --format json` of the YAML file, in at most {TARGET_SECONDS} s "
        f"and at least {WANTED_RATIO}x bake: {first:.2f} s on first read, {again:.2f} s re-run"
    )
    if bake:
        verdict += f" ({bake / first:.1f}x and {bake / again:.1f}x bake's {bake:.1f} s)"
    verdict += (
        f". Peak memory of that plan: {rows[largest]['first_mib']:.0f} MiB on first read, "
        f"{rows[largest]['again_mib']:.0f} MiB re-run."
    )
    smallest = min(rows)
    small_bake = rows[smallest]["bake"]
    if small_bake:
        verdict += (
            f" {smallest} targets: validate {small_bake / (rows[smallest]['validate'] or 1):.2f}x (first read "
            f"{small_bake / (rows[smallest]['validate_first'] or 1):.2f}x) and plan "
            f"{small_bake / (rows[smallest]['table'] or 1):.2f}x bake's speed (target: at least 1.0, aim 2)."
        )
    return verdict


def compile_buildflow() -> None:
    """Bytecode for every buildflow module, as a wheel's install writes it (PYTHONDONTWRITEBYTECODE may be set)."""
    compileall.compile_dir(Path(buildflow.__file__).parent, quiet=1)


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--sizes", default="21,100,1000,5000")
    options = parser.parse_args()
    with_bake = bake_available()
    if not with_bake:
        print("docker buildx not found (run scripts/engine.sh install): bake columns stay empty", file=sys.stderr)
    compile_buildflow()
    before = os.getloadavg()[0]
    rows = {}
    with tempfile.TemporaryDirectory(prefix="buildflow-bench-") as work:
        for count in (int(size) for size in options.sizes.split(",")):
            rows[count] = measure(count, options.runs, Path(work), with_bake)
            print(f"{count:>6} targets: {rows[count]}", file=sys.stderr)
    section = report(rows, options.runs, (before, os.getloadavg()[0]))
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
