"""The DAG: generations for ordering, and networkx for cycle paths, selection and everything graph-shaped.

Ordering is a plain layered walk over parent lists (Kahn's algorithm) because `buildflow plan` must start
fast: importing networkx costs about 0.2 s on the reference machines, so it is imported only by the
functions below that need a real graph algorithm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def layers(parents: Mapping[str, Sequence[str]]) -> tuple[list[list[str]], list[str]]:
    """Generations of a DAG given each node's parents: roots first, each node one after its deepest parent.

    Nodes keep their mapping order inside a generation. The second result lists the nodes that could not
    be placed because they are on a cycle or below one.
    """
    parents = {
        node: node_parents if len(node_parents) < 2 else list(dict.fromkeys(node_parents))
        for node, node_parents in parents.items()
    }
    waiting = {node: len(node_parents) for node, node_parents in parents.items()}
    children: dict[str, list[str]] = {node: [] for node in parents}
    for node, node_parents in parents.items():
        for parent in node_parents:
            children.setdefault(parent, []).append(node)
    position = {node: index for index, node in enumerate(parents)}
    current = [node for node, count in waiting.items() if count == 0]
    found: list[list[str]] = []
    while current:
        found.append(current)
        following = []
        for node in current:
            for child in children[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    following.append(child)
        current = sorted(following, key=position.__getitem__)
    placed = {node for layer in found for node in layer}
    return found, [node for node in parents if node not in placed]


def digraph(parents: Mapping[str, Iterable[tuple[str, str]]]) -> Any:
    """A networkx DiGraph with an edge parent -> child (attribute `kind`) per (parent, kind) pair."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(parents)
    graph.add_edges_from((parent, node, {"kind": kind}) for node, pairs in parents.items() for parent, kind in pairs)
    return graph


def cycle_paths(parents: Mapping[str, Sequence[str]], nodes: Iterable[str]) -> list[list[str]]:
    """One cycle per strongly connected component among `nodes`, as the list of nodes along it."""
    import networkx as nx

    graph = digraph({node: [(parent, "") for parent in parents.get(node, ())] for node in nodes})
    paths = []
    for component in nx.strongly_connected_components(graph):
        node = next(iter(component))
        if len(component) == 1 and not graph.has_edge(node, node):
            continue
        cycle = nx.find_cycle(graph.subgraph(component), source=min(component))
        paths.append([edge[0] for edge in cycle])
    return sorted(paths)


def closure(graph: Any, roots: Iterable[str], *, downstream: bool) -> set[str]:
    """The roots with all their ancestors (or, downstream, all their descendants)."""
    import networkx as nx

    walk = nx.descendants if downstream else nx.ancestors
    selected: set[str] = set()
    for root in roots:
        if root not in selected:
            selected.add(root)
            selected |= walk(graph, root)
    return selected
