"""`buildflow docs`: the documentation that came with this buildflow, where the user is (a clone or a wheel)."""

from __future__ import annotations

from pathlib import Path

import click

from buildflow.errors import UsageError


def docs_directory() -> Path:
    """The docs: inside the installed package (a wheel), else the clone's docs/ (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "docs"
    return installed if installed.is_dir() else package.parent / "docs"


def topics(directory: Path) -> dict[str, Path]:
    """Every topic (a file's name without .md) and its file."""
    return {path.stem: path for path in sorted(directory.glob("*.md"))}


def _complete_topic(context: click.Context, parameter: click.Parameter, incomplete: str) -> list[str]:
    """The topics that start with what is typed (shell completion)."""
    return [topic for topic in topics(docs_directory()) if topic.startswith(incomplete)]


@click.command(short_help="Show the documentation that came with buildflow: a topic, or the list of topics.")
@click.argument("topic", required=False, shell_complete=_complete_topic)
@click.option("--path", "show_path", is_flag=True, help="Print the topic's file (or the docs directory) instead.")
def docs(topic: str | None, show_path: bool) -> None:
    """Show TOPIC of buildflow's documentation (Markdown), or list the topics.

    \b
      buildflow docs                    the topics
      buildflow docs building           building, reports, when a build fails
      buildflow docs pipeline-format    every field of buildflow.yaml
      buildflow docs ci --path          where the file is, to open it in an editor
    """
    directory = docs_directory()
    found = topics(directory)
    if topic is None:
        if show_path:
            click.echo(directory)
            return
        click.echo("\n".join([f"Topics (buildflow docs TOPIC; the files are in {directory}):", *found]))
        return
    if topic.removesuffix(".md") not in found:
        raise UsageError(f"docs: no topic {topic!r}; choose one of: {', '.join(found)}")
    path = found[topic.removesuffix(".md")]
    click.echo(path if show_path else path.read_text(encoding="utf-8"))
