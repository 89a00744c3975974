"""Benchmark: what the quality gates cost on the 21-target tree, beside `docker buildx bake` plus the same checks
by script.

The tree of build_tree.py (1 + 4 + 16 targets, one `RUN ... sleep 2` each), with one test per target
(`test -s /n`), inherited down the tree: 57 test containers in all. Each round builds fresh copies (a new nonce):

- buildflow with the gates: lint, every test, the size and waste report of every image;
- buildflow without them (`--lint=off`, no `test:`): what the gates add;
- bake, then what a script would do for the same checks: hadolint on the Dockerfile and `docker run` of every
  test on every image, one after the other (bake has no tests, no lint and no size report).

Needs `scripts/engine.sh up`. Results go to bench/RESULTS.md between this benchmark's markers.

    python bench/quality_gates.py [--runs 3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from build_tree import REGISTRY, prepare_base, timed, tree, write_tree
from common import arguments, buildflow_command, machine, medians, publish, repeated

BEGIN, END = "<!-- quality_gates:begin -->", "<!-- quality_gates:end -->"
TEST = "test -s /n"


def with_tests(directory: Path) -> int:
    """Give every target of the tree's pipeline a test; the number of test runs once inherited."""
    pipeline = json.loads((directory / "pipeline.json").read_text())
    for spec in pipeline["targets"].values():
        spec["test"] = [f"{TEST} && echo {spec['args']['N']}"]
    (directory / "pipeline.json").write_text(json.dumps(pipeline))
    depth = {node: 0 if parent is None else -1 for node, parent in tree().items()}
    for node, parent in tree().items():
        if parent is not None:
            depth[node] = depth[parent] + 1
    return sum(level + 1 for level in depth.values())


def scripted_checks(directory: Path, namespace: str) -> float:
    """What a script after bake does for the same checks: hadolint, then every inherited test in every image."""
    hadolint = Path(sys.executable).with_name("hadolint")
    started = time.perf_counter()
    subprocess.run([str(hadolint), "--no-fail", str(directory / "ctx" / "Dockerfile")], capture_output=True, check=True)
    parents = tree()
    for node in parents:
        image = f"{REGISTRY}/{namespace}-bake/t{node}:1"
        ancestor: int | None = node
        while ancestor is not None:
            command = ["docker", "run", "--rm", "--network", "none", "--pull", "missing", image]
            subprocess.run([*command, "sh", "-c", f"{TEST} && echo {ancestor}"], capture_output=True, check=True)
            ancestor = parents[ancestor]
    return time.perf_counter() - started


def one_round(work: Path) -> dict[str, float]:
    """buildflow with and without the gates, and bake plus scripted checks, each on a fresh copy of the tree."""
    results: dict[str, float] = {}
    for variant in ("gated", "plain"):
        nonce = uuid.uuid4().hex
        directory = work / nonce
        write_tree(directory, f"bench-gates-{nonce[:8]}", nonce)
        command = [*buildflow_command(), "build", "-f", "pipeline.json", "--jobs", "16", "--progress", "plain"]
        if variant == "gated":
            results["tests"] = with_tests(directory)
        else:
            command.append("--lint=off")
        results[variant] = timed(command, directory)
    nonce = uuid.uuid4().hex
    directory = work / nonce
    namespace = f"bench-gates-{nonce[:8]}"
    write_tree(directory, namespace, nonce)
    results["bake"] = timed(["docker", "buildx", "bake", "-f", "docker-bake.json", "--progress", "plain"], directory)
    results["script"] = scripted_checks(directory, namespace)
    return results


def report(rounds: list[dict[str, float]]) -> str:
    """The Markdown section."""
    median = medians(rounds)
    checked_bake = median["bake"] + median["script"]
    return "\n".join(
        [
            BEGIN,
            "## quality_gates: tests, lint and size reports on the 21-target tree",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {len(rounds)} rounds, each on fresh "
            f"copies of the tree (nothing cached), pushing to 127.0.0.1:5000; {median['tests']:.0f} test containers "
            f"(one test per target, inherited down the tree). Reproduce: `make bench-gates`.",
            "",
            "| | seconds | / bake + scripted checks |",
            "|---|---:|---:|",
            f"| buildflow build, gates on (lint, {median['tests']:.0f} tests, size reports) | {median['gated']:.2f} | "
            f"{median['gated'] / checked_bake:.2f} |",
            f"| buildflow build, no lint (`--lint=off`), no tests, size reports still on | {median['plain']:.2f} | "
            f"{median['plain'] / checked_bake:.2f} |",
            f"| docker buildx bake --push, then hadolint and the same tests by `docker run` | {checked_bake:.2f} "
            f"({median['bake']:.2f} + {median['script']:.2f}) | 1.00 |",
            "",
            f"The gates add {median['gated'] - median['plain']:.2f} s to buildflow's build "
            f"({(median['gated'] / median['plain'] - 1) * 100:+.0f}%), nearly all of it the {median['tests']:.0f} "
            f"containers (a `docker run` costs about {median['script'] / median['tests']:.1f} s on these "
            f"{os.cpu_count()} cores, as the script's {median['script']:.2f} s show): tests run as soon as their image "
            "is built, "
            "beside the other builds, where a script after bake runs them once everything is built. Bake has no size "
            "or waste report to compare with.",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=3)
    options = parser.parse_args()
    prepare_base()
    rounds = repeated(options.runs, one_round, "buildflow-gates-")
    publish(report(rounds), BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
