"""The commands of the group, imported when one is run or listed: `validate` does not load the build machinery."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, MutableMapping

import click

# command name -> (module under buildflow.cli, attribute), in the order --help lists them by (click sorts by name)
COMMANDS = {
    "init": ("adopt", "init"),
    "import": ("adopt", "import_pipeline"),
    "validate": ("inspect", "validate"),
    "plan": ("inspect", "plan"),
    "status": ("inspect", "status"),
    "graph": ("inspect", "graph"),
    "build": ("build", "build"),
    "release": ("release", "release"),
    "gc": ("cleanup", "gc"),
    "verify": ("verify", "verify"),
    "builders": ("builders", "builders"),
    "lint": ("checks", "lint"),
    "test": ("checks", "test_images"),
    "ci": ("ci", "ci"),
    "schema": ("inspect", "schema"),
    "docs": ("docs", "docs"),
}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each module imported on first use and then prepared (its options named)."""

    def __init__(self, prepare: Callable[[str, click.Command], None]) -> None:
        self._prepare = prepare
        self._loaded: dict[str, click.Command] = {}
        self._added: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name in self._added:
            return self._added[name]
        if name not in self._loaded:
            module, attribute = COMMANDS[name]  # KeyError: no such command, as a dict says
            command = getattr(importlib.import_module(f"buildflow.cli.{module}"), attribute)
            self._prepare(name, command)
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._added[name] = command

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._added if name not in COMMANDS)

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._added))
