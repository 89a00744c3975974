"""Showing plans and graphs: table and JSON plans; text, DOT and Mermaid graphs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from buildflow.model import Edge, EdgeKind, Target
from buildflow.plan.planner import Plan

if TYPE_CHECKING:
    from buildflow.run.freshness import Assessment

_EDGE_MARK = {EdgeKind.FROM: "", EdgeKind.DEPENDS_ON: " (after)", EdgeKind.INFERRED: " (inferred)"}
_LEGEND = "(inferred): edge found in a Dockerfile, not declared; (after): depends_on, order only"


def _parents_text(target: Target) -> str:
    """'cuda, data (after), base (inferred)' or '-'."""
    if len(target.parents) == 1 and target.parents[0].kind == EdgeKind.FROM:
        return target.parents[0].parent
    names = [f"{edge.parent}{_EDGE_MARK[edge.kind]}" for edge in target.parents]
    return ", ".join(names) or "-"


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A table as lines: every column but the last padded to its widest cell."""
    widths = [max(map(len, column)) for column in zip(header, *rows, strict=True)][:-1]
    line = "  ".join(f"{{:<{width}}}" for width in widths) + "  {}"
    return [line.format(*row).rstrip() for row in (header, *rows)]


def _state(state: Assessment) -> str:
    """'up to date' or 'build'."""
    return "up to date" if state.digest else "build"


def plan_table(plan: Plan, states: Mapping[str, Assessment] | None = None) -> str:
    """The plan as an aligned table, one target per line; with states, whether each is up to date and why."""
    header = ["#", "GEN", "TARGET", "PARENTS", "FINGERPRINT", "TAGS"]
    rows = [
        [
            str(step.order),
            str(step.generation),
            step.target.id,
            _parents_text(step.target),
            step.target.fingerprint[:12],
            ", ".join(step.target.tags) or "-",
        ]
        for step in plan.steps
    ]
    if states is not None:
        header[-1:-1] = ["STATE", "WHY"]
        for row, step in zip(rows, plan.steps, strict=True):
            state = states[step.target.id]
            row[-1:-1] = [_state(state), state.why]
    lines = aligned(header, rows)
    lines.append("\n" + _summary(plan))
    if any(edge.kind != EdgeKind.FROM for step in plan.steps for edge in step.target.parents):
        lines.append(_LEGEND)
    return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    """'1 image', '3 images'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def validation_summary(plan: Plan) -> str:
    """'5 images of 4 targets in 4 generations, 7 edges (1 inferred from Dockerfiles)'."""
    edges = [edge for step in plan.steps for edge in step.target.parents]
    inferred = sum(1 for edge in edges if edge.kind == EdgeKind.INFERRED)
    return f"{_summary(plan)}, {_plural(len(edges), 'edge')} ({inferred} inferred from Dockerfiles)"


def _summary(plan: Plan) -> str:
    """'12 images of 5 targets in 5 generations'."""
    targets = len({step.target.name for step in plan.steps})
    generations = len({step.generation for step in plan.steps})
    return (
        f"{_plural(len(plan.steps), 'image')} of {_plural(targets, 'target')} in {_plural(generations, 'generation')}"
    )


def plan_json(plan: Plan, states: Mapping[str, Assessment] | None = None) -> str:
    """The plan as JSON: pipeline, registry and one object per target in order (with its state, if known)."""
    from buildflow.output import jsontext

    root = plan.pipeline.root
    targets = []
    for step in plan.steps:
        target: dict[str, Any] = {"order": step.order, "generation": step.generation, **step.target.to_json(root)}
        if states is not None:
            target |= _state_json(states[step.target.id])
        targets.append(target)
    document = {
        "pipeline": str(plan.pipeline.file),
        "registry": plan.pipeline.registry,
        "warnings": list(plan.pipeline.warnings),
        "targets": targets,
    }
    return jsontext.dumps(document)


def _state_json(state: Assessment) -> dict[str, Any]:
    """A target's state as JSON fields."""
    return {"up_to_date": state.digest is not None, "digest": state.digest, "why": state.why}


def status_table(plan: Plan, states: Mapping[str, Assessment]) -> str:
    """One line per target: up to date or build, the registry digest, and why; then the counts."""
    rows = []
    for step in plan.steps:
        state = states[step.target.id]
        rows.append([step.target.id, _state(state), (state.digest or "-")[:19], state.why])
    lines = aligned(["TARGET", "STATE", "DIGEST", "WHY"], rows)
    fresh = sum(1 for state in states.values() if state.digest)
    lines.append(f"\n{fresh} up to date, {len(states) - fresh} to build.")
    return "\n".join(lines)


def status_json(plan: Plan, states: Mapping[str, Assessment]) -> str:
    """The status as JSON: one object per target in order."""
    targets = [
        {"id": step.target.id, "fingerprint": step.target.fingerprint, **_state_json(states[step.target.id])}
        for step in plan.steps
    ]
    return json.dumps({"pipeline": str(plan.pipeline.file), "registry": plan.pipeline.registry, "targets": targets})


def graph_text(plan: Plan) -> str:
    """The DAG as a tree: each target under its first parent, and named again under its other parents."""
    targets = {step.target.id: step.target for step in plan.steps}
    children: dict[str, list[tuple[str, Edge, bool]]] = {target_id: [] for target_id in targets}
    first_parent: dict[str, str] = {}
    for target in targets.values():
        for index, edge in enumerate(_kept(target.parents, set(targets))):
            children[edge.parent].append((target.id, edge, index == 0))
            first_parent.setdefault(target.id, edge.parent)
    lines: list[str] = []
    stack: list[tuple[str | None, str, str]] = [
        (target_id, "", target_id) for target_id in reversed(list(targets)) if target_id not in first_parent
    ]
    while stack:
        node, branch, label = stack.pop()
        lines.append(branch + label)
        if node is None:
            continue
        indent = branch.replace("├── ", "│   ").replace("└── ", "    ")
        kids = children[node]
        for index in reversed(range(len(kids))):
            child, edge, primary = kids[index]
            child_branch = indent + ("└── " if index == len(kids) - 1 else "├── ")
            label = f"{child}{_EDGE_MARK[edge.kind]}"
            if primary:
                stack.append((child, child_branch, label))
            else:
                stack.append((None, child_branch, f"{label} (drawn under {first_parent[child]})"))
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def graph_dot(plan: Plan) -> str:
    """The DAG in Graphviz DOT: solid FROM edges, dotted depends_on, dashed inferred."""
    styles = {
        EdgeKind.FROM: "",
        EdgeKind.DEPENDS_ON: ' [style=dotted, label="after"]',
        EdgeKind.INFERRED: ' [style=dashed, label="inferred"]',
    }
    lines = ["digraph buildflow {", "  rankdir=TB;", "  node [shape=box, fontname=monospace];"]
    selected = {step.target.id for step in plan.steps}
    for step in plan.steps:
        lines.append(f"  {_quoted(step.target.id)};")
    for step in plan.steps:
        for edge in _kept(step.target.parents, selected):
            lines.append(f"  {_quoted(edge.parent)} -> {_quoted(step.target.id)}{styles[edge.kind]};")
    lines.append("}")
    return "\n".join(lines)


MERMAID_MAX_EDGES = 500  # Mermaid's default maxEdges: a larger flowchart is not drawn


def generations_mermaid(plan: Plan) -> str:
    """The DAG as a Mermaid flowchart of its generations: one node per generation (how many targets, a few
    named), one edge per pair of generations some edge joins."""
    by_generation: dict[int, list[str]] = {}
    for step in plan.steps:
        by_generation.setdefault(step.generation, []).append(step.target.id)
    generation_of = {step.target.id: step.generation for step in plan.steps}
    lines = ["flowchart TD"]
    for generation, members in sorted(by_generation.items()):
        named = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
        label = f"generation {generation}: {len(members)} targets<br>{named}".replace('"', "#quot;")
        lines.append(f'  g{generation}["{label}"]')
    joined = {
        (generation_of[edge.parent], generation_of[step.target.id])
        for step in plan.steps
        for edge in step.target.parents
        if edge.parent in generation_of
    }
    lines += [f"  g{parent} --> g{child}" for parent, child in sorted(joined)]
    return "\n".join(lines)


def graph_mermaid(plan: Plan) -> str:
    """The DAG as a Mermaid flowchart (renders in GitHub and GitLab Markdown)."""
    arrows = {EdgeKind.FROM: "-->", EdgeKind.DEPENDS_ON: "-. after .->", EdgeKind.INFERRED: "-. inferred .->"}
    node_ids = {step.target.id: f"n{index}" for index, step in enumerate(plan.steps)}
    lines = ["flowchart TD"]
    for target_id, node_id in node_ids.items():
        label = target_id.replace('"', "#quot;")
        lines.append(f'  {node_id}["{label}"]')
    for step in plan.steps:
        for edge in _kept(step.target.parents, set(node_ids)):
            lines.append(f"  {node_ids[edge.parent]} {arrows[edge.kind]} {node_ids[step.target.id]}")
    return "\n".join(lines)


def _kept(edges: Sequence[Edge], selected: set[str]) -> list[Edge]:
    """The edges whose parent is in the selection."""
    return [edge for edge in edges if edge.parent in selected]
