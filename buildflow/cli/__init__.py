"""The entry point, `main`: a re-run the answer cache has the answer to is answered from it (buildflow/answers.py);
any other run goes to the click application (app.py), imported only then."""

from __future__ import annotations

import sys

from buildflow import __version__, answers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the CLI and exit with a documented code; a whole process (no `argv`) may be answered from the cache."""
    if argv is not None:
        _run(list(argv))
    arguments = sys.argv[1:]
    key = answers.cache_key(arguments, __version__)
    if key is not None:
        answers.replay(key)
    with answers.Recorded(key):
        _run(arguments)


def _run(arguments: list[str]) -> NoReturn:
    """The click application, on these arguments."""
    from buildflow.cli.app import run

    run(arguments)
