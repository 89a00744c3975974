"""`buildflow import bake` as a use case: read the bake file as bake prints it, map it, check the pipeline with
buildflow's own loader, and compare its DAG with bake's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildflow import __version__
from buildflow.adopt import bakefile
from buildflow.adopt.bake import Imported, import_bake
from buildflow.adopt.writing import Draft, check, render
from buildflow.errors import PipelineError
from buildflow.model import EdgeKind, Pipeline

SHOWN_PER_GROUP = 8  # targets named in a group's comment; x-bake-groups lists them all


@dataclass
class Result:
    """The pipeline import writes and what to tell the user: what has no equivalent, the edges compared."""

    text: str
    imported: Imported
    pipeline: Pipeline | None
    problems: PipelineError | None = None
    unmapped: list[str] = field(default_factory=list)
    extra_edges: list[str] = field(default_factory=list)  # edges buildflow infers that bake does not have


def import_file(file: Path, names: Sequence[str], output: Path, registry: str | None) -> Result:
    """The pipeline for a bake file, checked as `output`; a PipelineError in `problems` when it does not load."""
    printed, through_bake = bakefile.read(file, names)
    imported = import_bake(printed, bake_dir=file.parent, out_dir=output.parent, registry=registry)
    json_file = output.suffix.lower() == ".json"
    imported.draft.header = _header(file, through_bake)
    if imported.groups:
        imported.draft.extensions["x-bake-groups"] = imported.groups
    try:
        pipeline = check(imported.draft, output)
    except PipelineError as error:
        result = Result("", imported, None, error, imported.notes.lines())
        imported.draft.header += ["Does not load yet (fix these, then buildflow validate):", *_indented(error.lines())]
        result.text = render(_annotated(imported.draft, result, imported), json_file)
        return result
    result = Result("", imported, pipeline, None)
    _check_against_bake(result, pipeline, imported)
    result.text = render(_annotated(imported.draft, result, imported), json_file)
    return result


def _header(file: Path, through_bake: bool) -> list[str]:
    """What the file is and how bake's edges became buildflow's."""
    how = ", as `docker buildx bake --print` prints it" if through_bake else ""
    return [
        f"Imported from {file.name} by `buildflow import bake` ({__version__}){how}.",
        "bake's `target:` contexts are from: here: buildflow builds the parent first and hands the child its exact",
        "digest, as the build arg BASE_IMAGE (the first parent) and as the named context of the parent's name;",
        "buildflow also infers edges from Dockerfile FROM / COPY --from lines that name another target.",
        "See it: buildflow plan --offline; buildflow graph. The format: buildflow docs pipeline-format.",
    ]


def _check_against_bake(result: Result, pipeline: Pipeline, imported: Imported) -> None:
    """Context names the Dockerfiles use that buildflow does not pass, and the edges bake does not have."""
    for name, aliases in imported.aliases.items():
        bases = pipeline.targets[name].bases if name in pipeline.targets else {}
        for alias, parent in aliases.items():
            if alias in bases:
                imported.notes.add(
                    name,
                    f"contexts.{alias}",
                    f"the Dockerfile names the context '{alias}' (bake: target:{parent}); buildflow passes that "
                    f"parent as the context '{parent}' and as ${{BASE_IMAGE}}: use one of those in the Dockerfile",
                )
    for target in pipeline.targets.values():
        for edge in target.parents:
            if edge.kind == EdgeKind.INFERRED and (edge.parent, target.id) not in imported.edges:
                result.extra_edges.append(
                    f"{target.id} <- {edge.parent} ({edge.instruction} {edge.reference}, Dockerfile line {edge.line})"
                )
    result.unmapped = imported.notes.lines()


def bake_dag_equal(result: Result) -> bool:
    """True when the pipeline's edges are exactly bake's."""
    if result.pipeline is None:
        return False
    ours = {(edge.parent, target.id) for target in result.pipeline.targets.values() for edge in target.parents}
    return ours == result.imported.edges


def _annotated(draft: Draft, result: Result, imported: Imported) -> Draft:
    """The draft with what was not carried over, the extra edges and the groups in its header."""
    lines = list(draft.header)
    if result.unmapped:
        lines += ["Not carried over (no equivalent in buildflow):", *_indented(result.unmapped)]
    if result.extra_edges:
        lines += [
            "Edges buildflow infers from the Dockerfiles that bake does not have:",
            *_indented(result.extra_edges),
        ]
    if imported.groups:
        lines += ["bake's groups, as selections (listed in x-bake-groups): build one by naming its targets:"]
        lines += _indented(_group_lines(imported.groups, len(draft.targets)))
    draft.header = lines
    return draft


def _group_lines(groups: dict[str, list[str]], total: int) -> list[str]:
    """`default: buildflow build a b c`, or `every target` for a group of all of them."""
    lines = []
    for group, members in groups.items():
        if len(members) == total:
            lines.append(f"{group}: every target: buildflow build")
            continue
        shown = " ".join(members[:SHOWN_PER_GROUP]) + (
            f" ... ({len(members)} targets)" if len(members) > SHOWN_PER_GROUP else ""
        )
        lines.append(f"{group}: buildflow build {shown}")
    return lines


def _indented(lines: list[str]) -> list[str]:
    """Lines as a list under a heading."""
    return [f"  - {line}" for line in lines]
