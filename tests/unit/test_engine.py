"""The engine boundary without Docker: requests, cache settings, error classification, references, reports."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from buildflow.engine.builders import BuilderInfo
from buildflow.engine.buildx import BuildxEngine, _build_arguments, _step_counts
from buildflow.engine.docker import classify
from buildflow.engine.trust import DaemonRegistries, Trust
from buildflow.output.report import report_document, summary_table
from buildflow.plan.planner import make_plan
from buildflow.references import parse, pinned
from buildflow.run.failures import FailureKind
from buildflow.run.naming import BuildOptions, build_request, cache_settings, content_reference, repository
from buildflow.run.outcome import Outcome, RunResult, Status
from tests.conftest import load

PIPELINE = """\
    version: 1
    registry: localhost:5000/t2t
    targets:
      base: {context: base, tags: ["base:1"], cache: inline}
      cuda: {context: cuda, from: base, tags: ["cuda:9.0", "cuda:latest"], secrets: {key: {file: keys/k.gpg}}}
      tool: {context: tool, tags: ["tool:1"], cache: {type: local, mode: min}}
      app: {context: app, from: cuda, depends_on: tool, tags: ["app:1"], network: host, cache: none}
    """
FILES = {
    "base/Dockerfile": "FROM scratch\n",
    "cuda/Dockerfile": "ARG BASE_IMAGE=base\nFROM ${BASE_IMAGE}\n",
    "tool/Dockerfile": "FROM scratch\n",
    "app/Dockerfile": "ARG BASE_IMAGE=cuda\nFROM ${BASE_IMAGE}\nCOPY --from=tool:1 /x /x\n",
}


@pytest.fixture
def pipeline(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load(tmp_path, PIPELINE, FILES)


def test_a_child_request_pins_its_parents(pipeline) -> None:  # type: ignore[no-untyped-def]
    parents = {
        "cuda": "localhost:5000/t2t/cuda@sha256:" + "c" * 64,
        "tool": "localhost:5000/t2t/tool@sha256:" + "d" * 64,
    }
    request = build_request(
        pipeline.targets["app"], parents, registry="localhost:5000/t2t", root=pipeline.root, options=BuildOptions()
    )
    assert request.args == {"BASE_IMAGE": parents["cuda"]}
    assert request.build_contexts == {
        "cuda": f"docker-image://{parents['cuda']}",
        "tool:1": f"docker-image://{parents['tool']}",
    }
    assert request.tags == (content_reference(pipeline.targets["app"], "localhost:5000/t2t"),)
    assert request.network == "host" and request.push and request.cache_from == () and request.cache_to is None


def test_secret_files_are_made_absolute_and_no_push_is_honoured(pipeline) -> None:  # type: ignore[no-untyped-def]
    request = build_request(
        pipeline.targets["cuda"],
        {"base": "b"},
        registry="",
        root=pipeline.root,
        options=BuildOptions(push=False, no_cache=True, pull=True),
    )
    assert request.secrets[0].location == str(pipeline.root / "keys" / "k.gpg")
    assert not request.push and request.no_cache and request.pull


def test_cache_settings(pipeline) -> None:  # type: ignore[no-untyped-def]
    registry, root = "localhost:5000/t2t", pipeline.root
    cuda_from, cuda_to = cache_settings(pipeline.targets["cuda"], registry=registry, root=root)
    assert cuda_from == ({"type": "registry", "ref": "localhost:5000/t2t/buildcache:cuda"},)
    assert cuda_to == {
        "type": "registry",
        "ref": "localhost:5000/t2t/buildcache:cuda",
        "mode": "max",
        "ignore-error": "true",
    }
    base_from, base_to = cache_settings(pipeline.targets["base"], registry=registry, root=root)
    assert base_to == {"type": "inline"} and base_from[0]["ref"].startswith("localhost:5000/t2t/base:bf-")
    tool_from, tool_to = cache_settings(pipeline.targets["tool"], registry=registry, root=root)
    assert tool_from == () and tool_to is not None and tool_to["dest"] == str(root / ".buildflow/cache/tool")
    assert cache_settings(pipeline.targets["app"], registry=registry, root=root) == ((), None)


def test_content_references_and_pins(pipeline) -> None:  # type: ignore[no-untyped-def]
    cuda = pipeline.targets["cuda"]
    assert repository(cuda, "x") == "localhost:5000/t2t/cuda"
    assert content_reference(cuda, "x") == f"localhost:5000/t2t/cuda:bf-{cuda.fingerprint[:24]}"
    assert pinned("localhost:5000/a/b:bf-1", "sha256:ab") == "localhost:5000/a/b@sha256:ab"


def test_build_arguments_never_carry_secret_values(pipeline) -> None:  # type: ignore[no-untyped-def]
    request = build_request(
        pipeline.targets["cuda"], {"base": "b"}, registry="r", root=pipeline.root, options=BuildOptions()
    )
    arguments = _build_arguments(request, Path("/tmp/m.json"), BuildxEngine()._output(request))
    assert arguments["secrets"] == [f"id=key,src={pipeline.root / 'keys' / 'k.gpg'}"]
    assert arguments["provenance"] is False and arguments["output"] == {
        "type": "image",
        "name": request.tags[0],
        "push": "false",  # pushed by its own retried call
    }
    assert arguments["stream_logs"] and arguments["progress"] == "plain"


def test_each_builder_gets_the_output_its_path_needs(pipeline) -> None:  # type: ignore[no-untyped-def]
    """The docker driver builds into its engine's store; other drivers push from BuildKit (or load, without push)."""
    request = build_request(
        pipeline.targets["cuda"], {"base": "b"}, registry="r", root=pipeline.root, options=BuildOptions()
    )
    remote = BuilderInfo("ci", builder="ci", driver="remote", image_store="")
    name = request.tags[0]
    assert BuildxEngine()._output(request) == {"type": "image", "name": name, "push": "false"}
    assert BuildxEngine(info=remote)._output(request) == {"type": "image", "name": name, "push": "true"}
    local = dataclasses.replace(request, push=False)
    assert BuildxEngine(info=remote)._output(local) == {"type": "docker", "name": name}
    assert BuildxEngine(push_from_buildkit=True)._output(request)["push"] == "true"


@pytest.mark.parametrize(
    ("lines", "code", "message", "transient"),
    [
        (
            [
                '#5 ERROR: process "/bin/sh -c x" did not complete successfully: exit code: 1',
                'ERROR: failed to solve: process "/bin/sh -c x" did not complete successfully: exit code: 1',
            ],
            1,
            'failed to solve: process "/bin/sh -c x" did not complete successfully: exit code: 1',
            False,
        ),
        (
            ["ERROR: failed to solve: dockerfile parse error on line 2: unknown instruction: RUNN"],
            1,
            "failed to solve: dockerfile parse error on line 2: unknown instruction: RUNN",
            False,
        ),
        (
            ["ERROR: failed to push x: dial tcp 127.0.0.1:5000: connect: connection refused"],
            1,
            "failed to push x: dial tcp 127.0.0.1:5000: connect: connection refused",
            True,
        ),
        (
            ["ERROR: unexpected status from HEAD request to http://x: 503 Service Unavailable"],
            1,
            "unexpected status from HEAD request to http://x: 503 Service Unavailable",
            True,
        ),
        (["ERROR: failed to authorize: 401 Unauthorized"], 1, "failed to authorize: 401 Unauthorized", False),
        (["ERROR: failed to solve: x: not found"], 1, "failed to solve: x: not found", False),
        (
            ["Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"],
            1,
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            True,
        ),
        ([], 124, "no answer within the time limit (killed): exit code 124", True),
    ],
)
def test_classify(lines: list[str], code: int, message: str, transient: bool) -> None:
    error = classify(lines, code)
    assert str(error) == message and error.transient is transient


def test_step_counts_leave_out_internal_steps_and_from() -> None:
    lines = [
        "#1 [internal] load build definition from Dockerfile",
        "#4 [1/3] FROM x@sha256:1",
        "#4 CACHED",
        "#5 [2/3] RUN a",
        "#5 CACHED",
        "#6 [build 3/3] COPY a b",
    ]
    assert _step_counts(lines) == (2, 1)


def test_registry_references() -> None:
    digest_ref = parse("localhost:5000/a/b@sha256:" + "a" * 64)
    assert (digest_ref.host, digest_ref.remote, digest_ref.version) == ("localhost:5000", "a/b", "sha256:" + "a" * 64)
    tag_ref = parse("registry.example:443/team/app")
    assert (tag_ref.remote, tag_ref.version, tag_ref.canonical) == (
        "team/app",
        "latest",
        "registry.example:443/team/app:latest",
    )
    trust = Trust(DaemonRegistries)  # Docker's defaults: 127.0.0.0/8 is insecure, nothing else
    assert trust.insecure("localhost:5000") and trust.insecure("127.0.0.1:5000")
    assert not trust.insecure("[::1]:5000") and not trust.insecure("192.0.2.1:443")


def test_summary_and_report(pipeline) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(pipeline)
    outcomes = {step.target.id: Outcome(step.target) for step in plan.steps}
    base = outcomes["base"]
    base.status, base.digest, base.reference, base.pushed = Status.BUILT, "sha256:" + "1" * 64, "r:bf-1", True
    base.started, base.finished, base.total_steps, base.cached_steps = 100.0, 101.5, 2, 2
    outcomes["cuda"].end(Status.FAILED, FailureKind.BUILD, "failed to solve: exit code: 1")
    outcomes["app"].end(Status.BLOCKED, FailureKind.BLOCKED, "cuda failed")
    result = RunResult(outcomes, 2.0)
    table = summary_table(result)
    assert "base    BUILT    1.5s  sha256:111111111111  -     r:bf-1 [2/2 steps cached]" in table
    assert "cuda    FAILED" in table and "failed to solve: exit code: 1" in table
    assert "Release tags not applied" in table
    document = json.loads(json.dumps(report_document(plan, result)))
    assert document["status"] == "failed" and document["released"] is False
    base_entry = next(t for t in document["targets"] if t["id"] == "base")
    assert base_entry["seconds"] == 1.5 and base_entry["cached_steps"] == 2 and base_entry["fingerprint"]


def test_docker_hub_bases_are_looked_up_by_buildx_and_others_by_the_registry_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from buildflow.engine.buildx import BuildxEngine

    engine = BuildxEngine()
    asked: list[tuple[str, str]] = []

    def answer(kind: str, digest: str):  # type: ignore[no-untyped-def]
        def look_up(reference: str) -> str:
            asked.append((kind, reference))
            return digest

        return look_up

    monkeypatch.setattr(engine, "_inspect_digest", answer("buildx", "d1"))
    monkeypatch.setattr(engine.registry, "digest", answer("client", "d2"))
    assert engine.manifest_digest("ubuntu:22.04") == "d1"
    assert engine.manifest_digest("nvidia/cuda:12.4.1-base") == "d1"
    assert engine.manifest_digest("localhost:5000/team/base:1") == "d2"
    assert [kind for kind, _ in asked] == ["buildx", "buildx", "client"]


def test_record_and_last_record_references(pipeline) -> None:  # type: ignore[no-untyped-def]
    from buildflow.run.naming import last_record_reference, record_reference

    target = pipeline.targets["cuda"]
    assert record_reference(target, "r") == content_reference(target, "r") + ".record"
    assert last_record_reference(target, "r") == f"{repository(target, 'r')}:bf-last.cuda"
    long = target._replace(id="x[" + ",".join(f"axis{n}=value{n}" for n in range(20)) + "]")
    tag = last_record_reference(long, "r").rpartition(":")[2]
    assert len(tag) <= 128 and tag.startswith("bf-last.x-axis0-value0")


def test_no_push_reads_the_registry_cache_and_writes_none(pipeline) -> None:  # type: ignore[no-untyped-def]
    """--no-push: an experiment on a laptop never writes the team's shared cache."""
    arguments = {"registry": "localhost:5000/t2t", "root": pipeline.root}
    pushed = build_request(pipeline.targets["cuda"], {"base": "b"}, options=BuildOptions(), **arguments)
    local = build_request(pipeline.targets["cuda"], {"base": "b"}, options=BuildOptions(push=False), **arguments)
    assert pushed.cache_to is not None and pushed.cache_to["type"] == "registry"
    assert local.cache_from == pushed.cache_from and local.cache_to is None
    tool = build_request(pipeline.targets["tool"], {"base": "b"}, options=BuildOptions(push=False), **arguments)
    assert tool.cache_to is not None and tool.cache_to["type"] == "local"  # a local cache is still written
