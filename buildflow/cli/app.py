"""The command line: the only place that turns exceptions into exit codes and output formats.

The commands live in their own modules (inspect, build, checks) and only parse options and call use cases; this
module holds the group they belong to and `run`, which the entry point (`buildflow.cli.main`) calls.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from buildflow import __version__, log
from buildflow.cli import exits
from buildflow.cli.commands import LazyCommands
from buildflow.cli.options import global_options, name_command_environment, name_environment
from buildflow.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_INVALID, BuildflowError

_EPILOG = """\b
Exit codes:
  0  success
  1  a target was not built, the release was not tagged (what moved was put back), --run-timeout passed,
     no engine or registry answers, (release) an image is not built, recorded or tested: one line each, or
     (gc) the registry refuses deletes;
     status --exit-code: something would be built; verify: an image was not reproduced
  2  invalid pipeline file or command line: one line per problem
  3  internal error in buildflow (rerun with --debug and report it)
  4  another run of the same pipeline and registry holds the lock (build or release --no-wait)
  130, 143  build or release interrupted by SIGINT or SIGTERM (the report is still written, a release under way
            is put back)
"""


class _Group(click.Group):
    """The group: with --log-format json, Ctrl-C in a command that does not handle signals itself ends it as
    click.Abort without the empty line click prints after a terminal's ^C (every line on stderr is JSON)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if not log.json_lines():
                raise
            raise click.exceptions.Abort from None


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog=_EPILOG,
    invoke_without_command=True,
)
@click.version_option(__version__, "--version", prog_name="buildflow")
@global_options
@click.pass_context
def cli(context: click.Context, /, **pipeline_options: object) -> None:
    """Build whole hierarchies of Docker images as one DAG.

    \b
    Describe your images once in buildflow.yaml (base -> cuda -> framework -> app),
    check and inspect the hierarchy, then build it:
      buildflow init --registry HOST/TEAM      write buildflow.yaml for the Dockerfiles under .
      buildflow import bake docker-bake.hcl    write the pipeline equivalent to a bake file
      buildflow validate                       check the file, report every problem
      buildflow plan                           order, generations, parents, tags, fingerprints
      buildflow plan app                       app and everything it is built on
      buildflow plan --downstream base         base and everything built on it
      buildflow status                         what is up to date in the registry, and why not
      buildflow graph --format mermaid         the DAG for a README or a merge request
      buildflow build --keep-going             build what changed, push, then tag the release
      buildflow build --since origin/main      only what changed since a commit, and its children
      buildflow build --max-age 7d             nightly: also rebuild images older than a week
      buildflow build --lint=error             fail on Dockerfile lint findings before building
      buildflow build --builder buildflow-2    build on another engine (repeat --builder to use several)
      buildflow build --only app --no-release  a CI job per image: app alone, pushed, no release tag moved
      buildflow release                        then move every release tag, once every image is checked
      buildflow gc --keep 1 --dry-run          which old content tags and records a clean-up would delete
      buildflow builders --all                 every docker context and buildx builder, and what each can do
      buildflow lint                           hadolint on every Dockerfile, file:line per finding
      buildflow test app                       run app's image tests (and inherited ones) again
      buildflow ci github -o images.yml        a GitHub Actions job per image (also gitlab, make)
      buildflow schema > pipeline.schema.json  JSON Schema for editors
      buildflow docs building                  the documentation, installed with buildflow

    The pipeline options (-f, --var, --registry, --log-format, --debug) go before or after the command; after it
    wins. Every option has an environment variable, shown in each --help: BUILDFLOW_FILE, BUILDFLOW_LOG_FORMAT for
    these, BUILDFLOW_BUILD_JOBS for build --jobs. NO_COLOR and FORCE_COLOR are honoured. Shell completion of
    commands, options and target names: eval "$(_BUILDFLOW_COMPLETE=bash_source buildflow)" (zsh_source,
    fish_source).

    The documentation comes with buildflow: `buildflow docs` lists it (the file format: `buildflow docs
    pipeline-format`; from bake, a Makefile or a tree of Dockerfiles: adopting; building and reports: building;
    tests, lint and sizes: quality; CI pipelines: ci; options, environment variables, JSON logs and completion:
    cli; TLS, insecure registries, Docker Hub: registries). In a clone: docs/*.md.
    """
    if context.invoked_subcommand is None:
        click.echo(context.get_help())


cli.commands = LazyCommands(name_command_environment)  # each command's module is imported when it is used
name_environment(cli)


def run(arguments: list[str]) -> NoReturn:
    """Run the CLI on these arguments and exit with a documented code."""
    exits.configure_early(arguments)  # until the options are read
    try:
        cli.main(args=arguments, prog_name="buildflow", standalone_mode=False, color=log.colour_choice())
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        exits.say("buildflow: interrupted", EXIT_INTERRUPTED)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as error:
        code = EXIT_INVALID if error.exit_code == 2 else error.exit_code
        exits.usage_error(error, code)
        sys.exit(code)
    except BuildflowError as error:
        exits.problems(error)
        sys.exit(error.exit_code)
    except Exception as error:
        exits.internal_error(error)
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
