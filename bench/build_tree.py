"""Benchmark: a cold, pushed build of a 21-target 4-ary tree, beside `docker buildx bake`, and per-target overhead.

The tree of shared/ENVIRONMENT.md: depth 3 (1 + 4 + 16 targets), each target one `RUN ... sleep 2` on its parent,
so the critical path is 6 s. Every run gets a fresh nonce build arg, so nothing comes from cache; neither tool
exports build cache (the pipeline says `cache: none`), both push every image to the registry on 127.0.0.1:5000.
Needs `scripts/engine.sh up`. Results go to bench/RESULTS.md between this benchmark's markers.

    python bench/build_tree.py [--runs 3]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from common import arguments, buildflow_command, machine, medians, publish, repeated

BEGIN, END = "<!-- build_tree:begin -->", "<!-- build_tree:end -->"
PUSH_FROM = "BUILDFLOW_PUSH_FROM"  # buildflow's measurement switch: the docker driver pushes from BuildKit too
REGISTRY = "localhost:5000"
CRITICAL_PATH = 6.0
TARGET_RATIO = 1.15
TARGET_OVERHEAD = 0.05
BASE = f"{REGISTRY}/bench-tree/busybox:base"
DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG N\nARG NONCE\nRUN --network=none echo $N $NONCE > /n && sleep 2\n"


def children(index: int) -> list[int]:
    """The children of a node of a 4-ary tree numbered breadth first."""
    return [4 * index + k for k in range(1, 5)]


def tree(count: int = 21) -> dict[int, int | None]:
    """Node -> parent."""
    parents: dict[int, int | None] = {0: None}
    for index in range(count):
        for child in children(index):
            if child < count:
                parents[child] = index
    return parents


def prepare_base() -> None:
    """A tiny busybox image the root builds on (made once, outside the measurements)."""
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy("/bin/busybox", Path(directory) / "busybox")
        (Path(directory) / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        )
        subprocess.run(
            [
                "docker",
                "buildx",
                "build",
                "--quiet",
                "--provenance=false",
                "--network",
                "none",
                "--push",
                "-t",
                BASE,
                directory,
            ],
            check=True,
            capture_output=True,
        )


def write_tree(directory: Path, namespace: str, nonce: str) -> None:
    """The same tree as a buildflow pipeline and as a bake file."""
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    parents = tree()
    targets: dict[str, object] = {}
    bake: dict[str, object] = {}
    for node, parent in parents.items():
        args = {"N": str(node), "NONCE": nonce}
        spec: dict[str, object] = {"args": args, "tags": [f"t{node}:1"]}
        bake_target: dict[str, object] = {
            "context": "ctx",
            "dockerfile": "Dockerfile",
            "network": "none",
            "args": {**args, "BASE_IMAGE": "parent" if parent is not None else BASE},
            "tags": [f"{REGISTRY}/{namespace}-bake/t{node}:1"],
            "output": ["type=image,push=true"],
        }
        if parent is None:
            spec["args"] = {**args, "BASE_IMAGE": BASE}
        else:
            spec["from"] = f"t{parent}"
            bake_target["contexts"] = {"parent": f"target:t{parent}"}
        targets[f"t{node}"] = spec
        bake[f"t{node}"] = bake_target
    pipeline = {
        "version": 1,
        "registry": f"{REGISTRY}/{namespace}",
        "defaults": {"context": "ctx", "network": "none", "cache": "none"},
        "targets": targets,
    }
    (directory / "pipeline.json").write_text(json.dumps(pipeline))
    (directory / "docker-bake.json").write_text(
        json.dumps({"group": {"default": {"targets": list(bake)}}, "target": bake})
    )


def timed(command: list[str], cwd: Path, environment: dict[str, str] | None = None) -> float:
    """Wall time of one whole command, which must succeed."""
    start = time.perf_counter()
    env = {**os.environ, **(environment or {})}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def one_round(work: Path) -> dict[str, float]:
    """buildflow (its default path, then pushing from BuildKit) and bake on fresh copies of the tree, then one
    target alone, by buildflow and by hand."""
    times = {}
    for name, environment in (("buildflow", {}), ("buildflow_buildkit_push", {PUSH_FROM: "buildkit"})):
        directory, _ = fresh_tree(work)
        command = [*buildflow_command(), "build", "-f", "pipeline.json", "--jobs", "16", "--progress", "plain"]
        times[name] = timed(command, directory, environment)
    directory, nonce = fresh_tree(work)  # its own nonce: nothing bake builds is in the cache already
    bake = timed(["docker", "buildx", "bake", "-f", "docker-bake.json", "--progress", "plain"], directory)
    return {**times, "bake": bake, **one_target(directory, nonce)}


def fresh_tree(work: Path) -> tuple[Path, str]:
    """A new copy of the tree with a new nonce (nothing of it cached): its directory and nonce."""
    nonce = uuid.uuid4().hex
    directory = work / nonce
    write_tree(directory, f"bench-tree-{nonce[:8]}", nonce)
    return directory, nonce


def one_target(directory: Path, nonce: str) -> dict[str, float]:
    """The root target alone, three times each way, alternating: buildflow's time for it (from its report,
    build and push) and a bare `docker buildx build --push` of the same Dockerfile."""
    pipeline = json.loads((directory / "pipeline.json").read_text())
    in_buildflow, bare = [], []
    for attempt in range(3):
        root = {**pipeline["targets"]["t0"]}
        root["args"] = {**root["args"], "NONCE": f"single-{attempt}-{nonce}"}
        (directory / "single.json").write_text(json.dumps({**pipeline, "targets": {"t0": root}}))
        report = directory / "single-report.json"
        timed(
            [*buildflow_command(), "build", "-f", "single.json", "--progress", "plain", "--report", str(report)],
            directory,
        )
        in_buildflow.append(json.loads(report.read_text())["targets"][0]["seconds"])
        bare.append(
            timed(
                [
                    "docker",
                    "buildx",
                    "build",
                    "--progress",
                    "plain",
                    "--provenance=false",
                    "--network",
                    "none",
                    "--build-arg",
                    f"BASE_IMAGE={BASE}",
                    "--build-arg",
                    "N=0",
                    "--build-arg",
                    f"NONCE=bare-{attempt}-{nonce}",
                    "--push",
                    "-t",
                    f"{REGISTRY}/bench-tree-bare/t0:{attempt}-{nonce[:8]}",
                    "ctx",
                ],
                directory,
            )
        )
    return {"target_in_buildflow": statistics.median(in_buildflow), "target_bare": statistics.median(bare)}


def report(rounds: list[dict[str, float]]) -> str:
    """The Markdown section."""
    median = medians(rounds)
    ratio = median["buildflow"] / CRITICAL_PATH
    overhead = median["target_in_buildflow"] / median["target_bare"] - 1
    return "\n".join(
        [
            BEGIN,
            "## build_tree: cold pushed build of the 21-target tree vs `docker buildx bake`",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {len(rounds)} rounds; each round "
            "builds fresh copies of the tree (a new nonce, nothing cached) with buildflow (`--jobs 16`) and with "
            "bake, both pushing to 127.0.0.1:5000. Reproduce: `make bench-build`.",
            "",
            "| | seconds | / critical path (6 s) | / bake |",
            "|---|---:|---:|---:|",
            f"| buildflow build | {median['buildflow']:.2f} | {ratio:.2f}x | "
            f"{median['buildflow'] / median['bake']:.2f} |",
            f"| buildflow build, pushing from BuildKit (`{PUSH_FROM}=buildkit`) | "
            f"{median['buildflow_buildkit_push']:.2f} | {median['buildflow_buildkit_push'] / CRITICAL_PATH:.2f}x | "
            f"{median['buildflow_buildkit_push'] / median['bake']:.2f} |",
            f"| docker buildx bake --push | {median['bake']:.2f} | {median['bake'] / CRITICAL_PATH:.2f}x | 1.00 |",
            "",
            f"Makespan target: at most {TARGET_RATIO}x the critical path: {ratio:.2f}x "
            f"({'meets' if ratio <= TARGET_RATIO else 'misses'} it).",
            "",
            "Per target (the root alone, nothing else building, three alternating runs each way): "
            f"{median['target_in_buildflow']:.2f} s inside buildflow (build and push, as in its report) against "
            f"{median['target_bare']:.2f} s for `docker buildx build --push` of the same Dockerfile by hand: "
            f"{overhead * 100:+.1f}% (target: at most {TARGET_OVERHEAD * 100:.0f}%).",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=3)
    options = parser.parse_args()
    prepare_base()
    rounds = repeated(options.runs, one_round, "buildflow-tree-")
    section = report(rounds)
    publish(section, BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
