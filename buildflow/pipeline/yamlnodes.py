"""A pipeline's YAML nodes as plain values, without PyYAML's general constructor (about three times faster).

libyaml composes the nodes; this builds dicts, lists, text, integers, booleans and nulls from them directly.
Anything else (another tag, a merge key, a key that is not plain text, a repeated key, an integer too long to
read) raises NotPlain, and the caller hands the same nodes to PyYAML's constructor, which reports the problem.
"""

from __future__ import annotations

from typing import Any

import yaml

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _BOOL, _NULL = f"{_TAG}str", f"{_TAG}int", f"{_TAG}bool", f"{_TAG}null"
_MAP, _SEQ = f"{_TAG}map", f"{_TAG}seq"
_KEY_TAGS = frozenset({_STR, _INT})


class NotPlain(Exception):
    """The nodes hold something only PyYAML's constructor builds or reports."""


def plain_value(node: yaml.Node) -> Any:
    """The value of a document's root node (a shared node, from an alias, gives one shared value)."""
    built: dict[int, Any] = {}

    def value(node: yaml.Node) -> Any:
        """One node's value, memoised by identity as PyYAML's constructor does."""
        known = built.get(id(node), built)
        if known is not built:
            return known
        tag = node.tag
        if tag == _MAP and isinstance(node, yaml.MappingNode):
            result: Any = {}
            built[id(node)] = result
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if key_node.tag not in _KEY_TAGS or not isinstance(key_node, yaml.ScalarNode) or key_node.value in seen:
                    raise NotPlain
                seen.add(key_node.value)
                result[str(_scalar(key_node))] = value(value_node)
            return result
        if tag == _SEQ and isinstance(node, yaml.SequenceNode):
            items: list[Any] = []
            built[id(node)] = items
            items.extend(value(item) for item in node.value)
            return items
        if isinstance(node, yaml.ScalarNode):
            built[id(node)] = scalar = _scalar(node)
            return scalar
        raise NotPlain

    return value(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    """Text, an integer (decimal, 0o octal, 0x hex), a boolean or null; NotPlain for any other tag."""
    tag, text = node.tag, node.value
    if tag == _STR:
        return text
    if tag == _INT:
        try:
            return int(text, 0) if text[:2] in ("0o", "0x") else int(text, 10)
        except ValueError:
            raise NotPlain from None
    if tag == _BOOL and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if tag == _NULL:
        return None
    raise NotPlain
