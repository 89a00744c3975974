"""Benchmark: a wide tree (one root, 24 leaves, each step `sleep 2`) built cold and pushed on a pool of 1, 2 and 3
engines, two slots each (the slots stand for machines: these have 2 cores). Needs `scripts/engine.sh up
--engines 3` (the extra engines are the docker contexts buildflow-2 and buildflow-3). Results go to
bench/RESULTS.md between this benchmark's markers.

    python bench/builders.py [--runs 3]
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from build_tree import BASE, REGISTRY, prepare_base, timed
from common import arguments, buildflow_command, machine, medians, publish, repeated

BEGIN, END = "<!-- builders:begin -->", "<!-- builders:end -->"
LEAVES = 24
SLOTS = 2
POOLS = {1: ["default"], 2: ["default", "buildflow-2"], 3: ["default", "buildflow-2", "buildflow-3"]}
TARGET_RATIO = 0.6  # the makespan on 2 engines, at most this share of the makespan on 1
DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG N\nARG NONCE\nRUN --network=none echo $N $NONCE > /n && sleep 2\n"


def write_wide(directory: Path, nonce: str) -> None:
    """The wide tree as a pipeline: its root on the busybox base, every leaf on the root."""
    (directory / "ctx").mkdir(parents=True)
    (directory / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    targets: dict[str, object] = {"root": {"args": {"N": "root", "NONCE": nonce, "BASE_IMAGE": BASE}, "tags": ["r:1"]}}
    for index in range(LEAVES):
        targets[f"l{index}"] = {"from": "root", "args": {"N": str(index), "NONCE": nonce}, "tags": [f"l{index}:1"]}
    pipeline = {
        "version": 1,
        "registry": f"{REGISTRY}/bench-wide-{nonce[:8]}",
        "defaults": {"context": "ctx", "network": "none", "cache": "none"},
        "targets": targets,
    }
    (directory / "pipeline.json").write_text(json.dumps(pipeline))


def one_round(work: Path) -> dict[str, float]:
    """The tree, fresh each time (a new nonce: nothing cached), on each pool."""
    seconds = {}
    for size, names in POOLS.items():
        nonce = uuid.uuid4().hex
        directory = work / nonce
        write_wide(directory, nonce)
        flags = [flag for name in names for flag in ("--builder", name)]
        command = [*buildflow_command(), "build", "-f", "pipeline.json", "--jobs", str(SLOTS), *flags]
        seconds[f"engines_{size}"] = timed([*command, "--progress", "plain"], directory)
    return seconds


def report(rounds: list[dict[str, float]]) -> str:
    """The Markdown section."""
    median = medians(rounds)
    one = median["engines_1"]
    rows = [
        f"| {size} ({', '.join(names)}) | {median[f'engines_{size}']:.2f} | {median[f'engines_{size}'] / one:.2f} |"
        for size, names in POOLS.items()
    ]
    ratio = median["engines_2"] / one
    return "\n".join(
        [
            BEGIN,
            f"## builders: a wide tree (1 root, {LEAVES} leaves, 2 s steps) on 1, 2 and 3 engines, {SLOTS} slots each",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {len(rounds)} rounds; each builds a "
            "fresh copy of the tree (a new nonce, nothing cached), pushed to 127.0.0.1:5000, with "
            f"`buildflow build --jobs {SLOTS} --builder ...`. The engines are dockerds on this machine "
            "(`scripts/engine.sh up --engines 3`); the slots stand for machines. Reproduce: `make bench-builders`.",
            "",
            "| engines | seconds | / 1 engine |",
            "|---|---:|---:|",
            *rows,
            "",
            f"Target: 2 engines at most {TARGET_RATIO}x of 1: {ratio:.2f}x "
            f"({'meets' if ratio <= TARGET_RATIO else 'misses'} it).",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    options = arguments(__doc__, runs=3).parse_args()
    prepare_base()
    rounds = repeated(options.runs, one_round, "buildflow-builders-")
    publish(report(rounds), BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
