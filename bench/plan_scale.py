"""Benchmark: `buildflow plan` of a generated 4-ary tree of N targets sharing one context, beside `bake --print`.

Each size is generated once as a buildflow pipeline (JSON, as generated pipelines usually are, and the same
pipeline as YAML) and as the equivalent docker-bake.json (parents as `target:` contexts). Every command runs as
a whole process with its output sent to a file, several times; the median is reported. Results go to
bench/RESULTS.md between this benchmark's markers.

    python bench/plan_scale.py [--sizes 100,1000,5000] [--runs 5]
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import arguments, buildflow_command, machine, publish

BEGIN, END = "<!-- plan_scale:begin -->", "<!-- plan_scale:end -->"
TARGET_SECONDS = 0.5
REFERENCE_BAKE_SECONDS = 15.6  # bake --print of 5,000 targets on these machines (shared/ENVIRONMENT.md)
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


def timed(command: list[str], cwd: Path, runs: int) -> list[float]:
    """Wall times of `runs` runs of a whole command, output to a file."""
    times = []
    for _ in range(runs):
        with (cwd / "out.txt").open("w") as output:
            start = time.perf_counter()
            result = subprocess.run(command, cwd=cwd, stdout=output, stderr=subprocess.PIPE, check=False)
            times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return times


def bake_available() -> bool:
    """True when `docker buildx bake` can run (scripts/engine.sh install provides it)."""
    return (
        bool(shutil.which("docker"))
        and subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
    )


def measure(count: int, runs: int, work: Path, with_bake: bool) -> dict[str, float | None]:
    """Median seconds for buildflow (JSON and YAML) and bake at one size."""
    directory = work / f"n{count}"
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    pipeline = buildflow_pipeline(count)
    (directory / "pipeline.json").write_text(json.dumps(pipeline))
    write_yaml(directory / "pipeline.yaml", pipeline)
    (directory / "docker-bake.json").write_text(json.dumps(bake_file(count)))
    command = buildflow_command()
    plan = [*command, "plan", "--offline", "-f"]
    row: dict[str, float | None] = {
        "json": statistics.median(timed([*plan, "pipeline.json"], directory, runs)),
        "yaml": statistics.median(timed([*plan, "pipeline.yaml"], directory, max(1, runs // 2))),
        "bake": None,
    }
    if with_bake:
        bake_runs = runs if count <= 1000 else 1
        bake = ["docker", "buildx", "bake", "-f", "docker-bake.json", "--print"]
        row["bake"] = statistics.median(timed(bake, directory, bake_runs))
    return row


def report(rows: dict[int, dict[str, float | None]], runs: int) -> str:
    """The Markdown section for RESULTS.md."""
    lines = [
        BEGIN,
        "## plan_scale: `buildflow plan` of a generated 4-ary tree vs `docker buildx bake --print`",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {runs} whole-process runs "
        "(start-up included, output to a file); bake at 5,000 targets once. `buildflow plan --offline`, since "
        "`bake --print` asks no registry either. Reproduce: `make bench-plan`.",
        "",
        "| targets | buildflow plan --offline (JSON file) | buildflow plan --offline (YAML file) | bake --print "
        "| bake / buildflow |",
        "|---:|---:|---:|---:|---:|",
    ]
    for count, row in rows.items():
        bake = row["bake"]
        json_seconds, yaml_seconds = row["json"] or 0.0, row["yaml"] or 0.0
        ratio = f"{bake / json_seconds:.1f}x" if bake else "n/a"
        bake_text = f"{bake:.2f} s" if bake else "n/a"
        lines.append(f"| {count:,} | {json_seconds:.2f} s | {yaml_seconds:.2f} s | {bake_text} | {ratio} |")
    lines += ["", _verdict(rows), END]
    return "\n".join(lines)


def _verdict(rows: dict[int, dict[str, float | None]]) -> str:
    """The target (0.5 s where bake takes 15.6 s), absolute and as the same ratio to bake in this run."""
    largest = max(rows)
    seconds, bake = rows[largest]["json"] or 0.0, rows[largest]["bake"]
    verdict = f"Target: {largest:,} targets in at most {TARGET_SECONDS} s: {seconds:.2f} s here"
    if not bake:
        return verdict + "."
    wanted = REFERENCE_BAKE_SECONDS / TARGET_SECONDS
    scaled = seconds * REFERENCE_BAKE_SECONDS / bake
    return (
        f"{verdict}. Machine speed varies between runs, so the target is also read as its ratio to bake: "
        f"{REFERENCE_BAKE_SECONDS} s / {TARGET_SECONDS} s = {wanted:.0f}x wanted, {bake / seconds:.1f}x measured "
        f"(bake took {bake:.1f} s in this run; buildflow scaled to a {REFERENCE_BAKE_SECONDS} s bake: {scaled:.2f} s)."
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--sizes", default="100,1000,5000")
    options = parser.parse_args()
    with_bake = bake_available()
    if not with_bake:
        print("docker buildx not found (run scripts/engine.sh install): bake columns stay empty", file=sys.stderr)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="buildflow-bench-") as work:
        for count in (int(size) for size in options.sizes.split(",")):
            rows[count] = measure(count, options.runs, Path(work), with_bake)
            print(f"{count:>6} targets: {rows[count]}", file=sys.stderr)
    section = report(rows, options.runs)
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
