"""The image tests of each image: commands and env values templated with its matrix values and variables, and the
commands whose `when:` matches its matrix values."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from buildflow.errors import FieldPath
from buildflow.model import TestPolicy
from buildflow.pipeline import matrix
from buildflow.pipeline.resolve.order import axis_hint
from buildflow.pipeline.resolve.render import render_text
from buildflow.pipeline.resolve.settings import tests_policy
from buildflow.pipeline.resolve.state import Image, State
from buildflow.pipeline.variables import as_text

Command = str | Mapping[str, Any]  # a command, or {run: COMMAND, when: {AXIS: VALUE}}


def render_tests(state: State, images: list[Image]) -> None:
    """Fill the tests of every image of a target with a `test:`."""
    for image in images:
        if "test" in state.specs[image.name]:
            image.tests = variant_tests(state, image)


def variant_tests(state: State, image: Image) -> TestPolicy | None:
    """The tests of this image, or None when they are the target's as written (nothing templated, no `when:`)."""
    declared = state.specs[image.name].get("test", [])
    commands: Sequence[Command] = declared if isinstance(declared, list) else declared.get("commands", [])
    env: Mapping[str, Any] = {} if isinstance(declared, list) else declared.get("env", {})
    if not any(_varies(command) for command in commands) and not any(_templated(as_text(v)) for v in env.values()):
        return None
    path = state.setting_path(image.name, "test")
    where: FieldPath = path if isinstance(declared, list) else (*path, "commands")
    chosen = []
    for index, command in enumerate(commands):
        run, when = (command, {}) if isinstance(command, str) else (command["run"], command.get("when", {}))
        item_path = (*where, index) if isinstance(command, str) else (*where, index, "run")
        if when and not _check_when(state, image, when, (*where, index, "when")):
            continue
        if matrix.when_matches(when, image.values):
            chosen.append(render_text(state, run, image.scope, item_path, image.id) if _templated(run) else run)
    filled = {
        name: render_text(state, as_text(value), image.scope, (*path, "env", name), image.id)
        for name, value in env.items()
    }
    return dataclasses.replace(tests_policy(state.specs[image.name]), commands=tuple(chosen), env=filled)


def _varies(command: Command) -> bool:
    """True for a command with a placeholder or a `when:`."""
    return _templated(command) if isinstance(command, str) else True


def _templated(text: str) -> bool:
    """True for text with a placeholder or an escaped brace."""
    return "{" in text or "}}" in text


def _check_when(state: State, image: Image, when: Mapping[str, Any], path: FieldPath) -> bool:
    """True when `when:` names only matrix axes of the target (its own and those it inherits); each other axis
    is a problem."""
    axes = [*image.values, *matrix.own_axes(state.specs[image.name].get("matrix", {}))]
    unknown = [axis for axis in when if axis not in axes]
    for axis in unknown:
        message = f"'{axis}' is not a matrix axis of {image.name}{axis_hint(axis, set(axes))}"
        state.problems.add((*path, axis), message)
    return not unknown
