"""Benchmark: the 21-target tree re-run after a comment change in its root's Dockerfile, with early cutoff, without
it (`--no-early-cutoff`), and `docker buildx bake` re-run after the same change.

The tree of build_tree.py (21 targets, each `RUN ... sleep 2`), with the root given a Dockerfile of its own. Built
once by each tool outside the measurements. Then each round: a new comment in the root's Dockerfile and
`buildflow build` (the root is rebuilt to the same digest, the 20 others are REUSED), another comment and
`buildflow build --no-early-cutoff` (all 21 built, from BuildKit's cache, and pushed), and `docker buildx bake`
(every target through BuildKit, cached, pushed). Outside git, no SOURCE_DATE_EPOCH: buildflow's epoch is 0.
Needs `scripts/engine.sh up`. Results go to bench/RESULTS.md between this benchmark's markers.

    python bench/cutoff_rerun.py [--runs 3]
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

BEGIN, END = "<!-- cutoff_rerun:begin -->", "<!-- cutoff_rerun:end -->"
SETTLE_SECONDS = 10.0  # before each measured run: dockerd and containerd finish what the last one left
ENVIRONMENT = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}


def own_root(directory: Path) -> None:
    """Give the root target (t0) a context and Dockerfile of its own, in the pipeline and in the bake file."""
    (directory / "root").mkdir()
    (directory / "root" / "Dockerfile").write_text((directory / "ctx" / "Dockerfile").read_text())
    pipeline = json.loads((directory / "pipeline.json").read_text())
    pipeline["targets"]["t0"]["context"] = "root"
    (directory / "pipeline.json").write_text(json.dumps(pipeline))
    bake = json.loads((directory / "docker-bake.json").read_text())
    bake["target"]["t0"]["context"] = "root"
    (directory / "docker-bake.json").write_text(json.dumps(bake))


def comment(directory: Path, text: str) -> None:
    """A new comment on top of the root's Dockerfile: a new fingerprint, the same image."""
    dockerfile = directory / "root" / "Dockerfile"
    dockerfile.write_text(f"# {text}\n{dockerfile.read_text()}")


def run_buildflow(directory: Path, *extra: str) -> tuple[float, dict[str, tuple[str, str]]]:
    """One measured buildflow run: its time and each target's status and digest."""
    report = directory / "report.json"
    command = [*buildflow_command(), "build", "-f", "pipeline.json", "--jobs", "16", "--progress", "plain"]
    seconds = timed([*command, "--report", str(report), *extra], directory, ENVIRONMENT)
    targets = json.loads(report.read_text())["targets"]
    return seconds, {target["id"]: (target["status"], target["digest"]) for target in targets}


def checked(found: dict[str, tuple[str, str]], first: dict[str, str], reused: bool, label: str) -> None:
    """Every digest as in the first build; the root BUILT; the others REUSED (with cutoff) or BUILT (without)."""
    expected = {name: "BUILT" if name == "t0" or not reused else "REUSED" for name in found}
    statuses = {name: status for name, (status, _) in found.items()}
    if statuses != expected or {name: digest for name, (_, digest) in found.items()} != first:
        raise SystemExit(f"{label}: unexpected statuses or digests: {found}")


def rounds(directory: Path, count: int) -> list[dict[str, float]]:
    """Cold builds first (not measured), then `count` rounds of the three re-runs after a comment change."""
    bake = ["docker", "buildx", "bake", "-f", "docker-bake.json", "--progress", "plain"]
    _, built = run_buildflow(directory)
    first = {name: digest for name, (_, digest) in built.items()}
    timed(bake, directory)
    measured = []
    for number in range(count):
        row = {}
        for name, extra in (("cutoff", ()), ("no_cutoff", ("--no-early-cutoff",))):
            comment(directory, f"round {number + 1} {name}")
            time.sleep(SETTLE_SECONDS)
            row[f"load_{name}"] = os.getloadavg()[0]
            row[name], found = run_buildflow(directory, *extra)
            checked(found, first, name == "cutoff", f"round {number + 1} {name}")
        comment(directory, f"round {number + 1} bake")
        time.sleep(SETTLE_SECONDS)
        row["bake"] = timed(bake, directory)
        measured.append(row)
        print(f"round {number + 1}: {row}", file=sys.stderr)
    return measured


def report(measured: list[dict[str, float]]) -> str:
    """The Markdown section."""
    median = medians(measured)
    return "\n".join(
        [
            BEGIN,
            "## cutoff_rerun: the 21-target tree re-run after a comment change in the root's Dockerfile",
            "",
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine()}. Median of {len(measured)} rounds after one "
            f"cold build by each tool, each run after a new comment in the root's Dockerfile and {SETTLE_SECONDS:.0f} "
            "s of quiet. With early cutoff the root is rebuilt to the same digest (SOURCE_DATE_EPOCH fixed) and "
            "the 20 others are REUSED (`parent t0 rebuilt, same digest`: their content tags for the new "
            "fingerprints are pointed at the same images, no BuildKit call); with `--no-early-cutoff` all 21 are "
            "built (every step cached by BuildKit) and pushed; bake sends all 21 through BuildKit, cached, and "
            "pushes. Every run checked: same digests as the first build. Reproduce: `make bench-cutoff`.",
            "",
            "| | seconds | / bake |",
            "|---|---:|---:|",
            f"| buildflow build (early cutoff: 1 BUILT, 20 REUSED) | {median['cutoff']:.2f} | "
            f"{median['cutoff'] / median['bake']:.3f} |",
            f"| buildflow build --no-early-cutoff (21 BUILT) | {median['no_cutoff']:.2f} | "
            f"{median['no_cutoff'] / median['bake']:.3f} |",
            f"| docker buildx bake --push (re-run) | {median['bake']:.2f} | 1.000 |",
            "",
            f"Early cutoff takes {median['cutoff'] / median['no_cutoff']:.3f} of the time without it. The machine "
            f"is shared: the 1-minute load average before the runs had a median of {median['load_cutoff']:.1f} "
            f"(with cutoff) and {median['load_no_cutoff']:.1f} (without), on 2 cores.",
            END,
        ]
    )


def main() -> None:
    """Run the benchmark and record it."""
    parser = arguments(__doc__, runs=3)
    options = parser.parse_args()
    prepare_base()
    with tempfile.TemporaryDirectory(prefix="buildflow-cutoff-") as work:
        nonce = uuid.uuid4().hex
        directory = Path(work) / nonce
        write_tree(directory, f"bench-cutoff-{nonce[:8]}", nonce)
        own_root(directory)
        measured = rounds(directory, options.runs)
    publish(report(measured), BEGIN, END, write=not options.no_write)


if __name__ == "__main__":
    main()
