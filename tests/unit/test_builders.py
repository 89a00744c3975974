"""Describing builders (engine/builders.py) from what docker really printed on this project's machine: Docker 26.1.5
with buildx 0.13.1, four engines as docker contexts (default, buildflow-2, buildflow-3 with the containerd store,
buildflow-classic with the classic one), a context whose engine is down and an inactive docker-container builder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from buildflow.engine.base import EngineError
from buildflow.engine.builders import (
    CLASSIC_STORE,
    CONTAINERD_STORE,
    available,
    builder_names,
    current,
    describe,
    image_store,
    parse_inspection,
)

# docker context ls --format '{{json .}}' (bf-down: a context whose socket nobody listens on)
CONTEXT_LS = """\
{"Current":false,"Description":"","DockerEndpoint":"unix:///tmp/bf-nothing.sock","Error":"","Name":"bf-down"}
{"Current":false,"Description":"buildflow engine 2 (scripts/engine.sh)","DockerEndpoint":"unix:///tmp/bfe/engine-2/docker.sock","Error":"","Name":"buildflow-2"}
{"Current":false,"Description":"buildflow engine classic (scripts/engine.sh)","DockerEndpoint":"unix:///tmp/bfe/engine-classic/docker.sock","Error":"","Name":"buildflow-classic"}
{"Current":true,"Description":"Current DOCKER_HOST based configuration","DockerEndpoint":"unix:///var/run/docker.sock","Error":"","Name":"default"}
"""

# docker buildx ls --format json: buildx 0.13.1 prints every builder that loads twice, one that fails once
BUILDX_LS_JSON = """\
{"Name":"bf-container","Driver":"docker-container","LastActivity":"2026-12-02T06:54:16Z","Dynamic":false,"Nodes":[{"Name":"bf-container0","Endpoint":"unix:///var/run/docker.sock","Flags":["--allow-insecure-entitlement=network.host"],"Status":"inactive"}]}
{"Name":"bf-container","Driver":"docker-container","LastActivity":"2026-12-02T06:54:16Z","Dynamic":false,"Nodes":[{"Name":"bf-container0","Endpoint":"unix:///var/run/docker.sock","Flags":["--allow-insecure-entitlement=network.host"],"Status":"inactive"}]}
{"Name":"buildflow-2","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"buildflow-2","Endpoint":"buildflow-2","Status":"running","Version":"v0.0.0+unknown","IDs":["ws5b8zz6fetxt7hjgcfgdz1ya"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4"],"Labels":{"org.mobyproject.buildkit.worker.executor":"containerd","org.mobyproject.buildkit.worker.snapshotter":"overlayfs"}}]}
{"Name":"buildflow-2","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"buildflow-2","Endpoint":"buildflow-2","Status":"running","Version":"v0.0.0+unknown","IDs":["ws5b8zz6fetxt7hjgcfgdz1ya"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4"],"Labels":{"org.mobyproject.buildkit.worker.executor":"containerd","org.mobyproject.buildkit.worker.snapshotter":"overlayfs"}}]}
{"Name":"buildflow-classic","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"buildflow-classic","Endpoint":"buildflow-classic","Status":"running","Version":"v0.0.0+unknown","IDs":["386f0031-99cf-47fc-90a1-55ef7cbf4101"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4","linux/386"],"Labels":{"org.mobyproject.buildkit.worker.moby.host-gateway-ip":"\\u003cnil\\u003e"}}]}
{"Name":"buildflow-classic","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"buildflow-classic","Endpoint":"buildflow-classic","Status":"running","Version":"v0.0.0+unknown","IDs":["386f0031-99cf-47fc-90a1-55ef7cbf4101"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4","linux/386"],"Labels":{"org.mobyproject.buildkit.worker.moby.host-gateway-ip":"\\u003cnil\\u003e"}}]}
{"Name":"default","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"default","Endpoint":"default","Status":"running","Version":"v0.0.0+unknown","IDs":["qiefjvkr397dmeobcoj0pg5hx"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4"],"Labels":{"org.mobyproject.buildkit.worker.executor":"containerd"}}]}
{"Name":"default","Driver":"docker","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"default","Endpoint":"default","Status":"running","Version":"v0.0.0+unknown","IDs":["qiefjvkr397dmeobcoj0pg5hx"],"Platforms":["linux/amd64","linux/amd64/v2","linux/amd64/v3","linux/amd64/v4"],"Labels":{"org.mobyproject.buildkit.worker.executor":"containerd"}}]}
{"Name":"bf-down","Driver":"","LastActivity":"0001-01-01T00:00:00Z","Dynamic":false,"Nodes":[{"Name":"","Endpoint":""}],"Err":"Cannot connect to the Docker daemon at unix:///tmp/bf-nothing.sock. Is the docker daemon running?"}
"""  # noqa: E501

# docker buildx ls (the table, all that buildx before 0.13 prints), and the errors after it
BUILDX_LS_TABLE = """\
NAME/NODE           DRIVER/ENDPOINT                   STATUS     BUILDKIT         PLATFORMS
bf-container        docker-container
 \\_ bf-container0    \\_ unix:///var/run/docker.sock   inactive
default*            docker
 \\_ default          \\_ default                       running    v0.0.0+unknown   linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4
bf-down                                               error

Cannot load builder bf-down: Cannot connect to the Docker daemon at unix:///tmp/bf-nothing.sock. Is the docker daemon running?
"""  # noqa: E501

INSPECT_DEFAULT = """\
Name:          default
Driver:        docker
Last Activity: 2026-12-02 06:53:37 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4
Labels:
 org.mobyproject.buildkit.worker.containerd.namespace: moby
 org.mobyproject.buildkit.worker.executor:             containerd
 org.mobyproject.buildkit.worker.hostname:             vm
 org.mobyproject.buildkit.worker.moby.host-gateway-ip: <nil>
 org.mobyproject.buildkit.worker.network:              host
 org.mobyproject.buildkit.worker.snapshotter:          overlayfs
"""

INSPECT_BUILDFLOW_2 = """\
Name:   buildflow-2
Driver: docker

Nodes:
Name:             buildflow-2
Endpoint:         buildflow-2
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4
Labels:
 org.mobyproject.buildkit.worker.containerd.namespace: buildflow-2
 org.mobyproject.buildkit.worker.executor:             containerd
 org.mobyproject.buildkit.worker.snapshotter:          overlayfs
"""

INSPECT_CLASSIC = """\
Name:   buildflow-classic
Driver: docker

Nodes:
Name:             buildflow-classic
Endpoint:         buildflow-classic
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4, linux/386
Labels:
 org.mobyproject.buildkit.worker.moby.host-gateway-ip: <nil>
"""

# exit code 0: buildx says a context whose engine is down is there, with an Error line
INSPECT_DOWN = """\
Name:   bf-down
Driver: 
Error:  Cannot connect to the Docker daemon at unix:///tmp/bf-nothing.sock. Is the docker daemon running?
"""  # noqa: W291

INSPECT_CONTAINER = """\
Name:          bf-container
Driver:        docker-container
Last Activity: 2026-12-02 06:54:16 +0000 UTC

Nodes:
Name:                  bf-container0
Endpoint:              unix:///var/run/docker.sock
Status:                inactive
BuildKit daemon flags: --allow-insecure-entitlement=network.host
"""

# docker --context X info --format '{{json .DriverStatus}}'
STATUS_CONTAINERD = '[["driver-type","io.containerd.snapshotter.v1"]]'
STATUS_OVERLAY2 = (
    '[["Backing Filesystem","extfs"],["Supports d_type","true"],["Using metacopy","false"],'
    '["Native Overlay Diff","true"],["userxattr","false"]]'
)
ENGINE = "26.1.5+dfsg1"  # docker --context X version --format '{{.Server.Version}}'
DOWN = "Cannot connect to the Docker daemon at unix:///tmp/bf-nothing.sock. Is the docker daemon running?"

VERSION = ("version", "--format", "{{.Server.Version}}")
INFO = ("info", "--format", "{{json .DriverStatus}}")
MACHINE: dict[tuple[str, tuple[str, ...]], str | EngineError] = {
    ("", ("context", "ls", "--format", "{{json .}}")): CONTEXT_LS,
    ("", ("buildx", "ls", "--format", "json")): BUILDX_LS_JSON,
    ("", ("buildx", "ls")): BUILDX_LS_TABLE,
    ("", ("buildx", "inspect")): INSPECT_DEFAULT,
    ("", ("buildx", "inspect", "default")): INSPECT_DEFAULT,
    ("", ("buildx", "inspect", "buildflow-2")): INSPECT_BUILDFLOW_2,
    ("", ("buildx", "inspect", "buildflow-classic")): INSPECT_CLASSIC,
    ("", ("buildx", "inspect", "bf-down")): INSPECT_DOWN,
    ("", ("buildx", "inspect", "bf-container")): INSPECT_CONTAINER,
    ("", ("buildx", "inspect", "nosuch")): EngineError('no builder "nosuch" found', transient=False),
    ("", VERSION): ENGINE,
    ("", INFO): STATUS_CONTAINERD,
    ("default", VERSION): ENGINE,
    ("default", INFO): STATUS_CONTAINERD,
    ("buildflow-2", VERSION): ENGINE,
    ("buildflow-2", INFO): STATUS_CONTAINERD,
    ("buildflow-classic", VERSION): ENGINE,
    ("buildflow-classic", INFO): STATUS_OVERLAY2,
    ("bf-down", VERSION): EngineError(DOWN, transient=True),
    ("bf-down", INFO): EngineError(DOWN, transient=True),
}


class FakeDocker:
    """Answers docker commands from a table of what docker printed; records what was asked."""

    def __init__(self, answers: Mapping[tuple[str, tuple[str, ...]], str | EngineError] = MACHINE) -> None:
        self.answers = dict(answers)
        self.asked: list[tuple[str, tuple[str, ...]]] = []

    def __call__(self, context: str, arguments: Sequence[str]) -> str:
        key = (context, tuple(arguments))
        self.asked.append(key)
        answer = self.answers.get(key, EngineError(f"unexpected command {key}", transient=False))
        if isinstance(answer, EngineError):
            raise answer
        return answer.strip()


def test_available_names_every_context_and_builder_once() -> None:
    """Contexts first, then the builders that are not contexts; buildx 0.13's doubled JSON lines count once."""
    assert available(FakeDocker()) == ["bf-down", "buildflow-2", "buildflow-classic", "default", "bf-container"]


def test_an_older_buildx_is_read_from_its_table() -> None:
    """No --format before buildx 0.13: the builder lines of the table, '*' off the current one, errors skipped."""
    answers = dict(MACHINE)
    answers["", ("buildx", "ls", "--format", "json")] = EngineError("unknown flag: --format", transient=False)
    assert builder_names(FakeDocker(answers)) == ["bf-container", "default", "bf-down"]


def test_without_buildx_the_contexts_are_still_named() -> None:
    """`docker buildx` missing: the contexts; docker missing: nothing, and no exception."""
    answers = dict(MACHINE)
    answers["", ("buildx", "ls", "--format", "json")] = EngineError(
        "docker: 'buildx' is not a docker command.", transient=False
    )
    assert available(FakeDocker(answers)) == ["bf-down", "buildflow-2", "buildflow-classic", "default"]
    assert available(FakeDocker({})) == []


def test_a_context_with_the_containerd_store() -> None:
    """Every command goes to the context; its engine, BuildKit, store and platforms; it can do everything."""
    info = describe("buildflow-2", FakeDocker())
    assert (info.name, info.context, info.builder, info.driver) == ("buildflow-2", "buildflow-2", "", "docker")
    assert info.answers and info.error == ""
    assert (info.engine_version, info.buildkit_version, info.image_store) == (ENGINE, "v0.0.0+unknown", "containerd")
    assert info.platforms == ("linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4")
    assert info.capabilities == ("registry cache", "push from BuildKit", "local image hand-off", "multi-platform")


def test_a_context_with_the_classic_store() -> None:
    """overlay2 without the containerd snapshotter: no registry cache, no multi-platform, a push changes digests."""
    info = describe("buildflow-classic", FakeDocker())
    assert info.answers and info.image_store == CLASSIC_STORE and info.platforms[-1] == "linux/386"
    assert not info.registry_cache and not info.multi_platform and not info.same_digest
    assert info.capabilities == ("push from BuildKit", "local image hand-off")


def test_a_context_whose_engine_is_down() -> None:
    """buildx inspect exits 0 with an Error line: described as not answering, and its engine is not asked."""
    docker = FakeDocker()
    info = describe("bf-down", docker)
    assert (info.context, info.builder, info.driver) == ("bf-down", "", "docker")
    assert not info.answers and info.error == DOWN
    assert info.engine_version == "" and info.platforms == ()
    assert ("bf-down", VERSION) not in docker.asked


def test_an_engine_that_stops_while_it_is_described() -> None:
    """BuildKit answered, then the engine did not: not answering, with docker's one line."""
    answers = dict(MACHINE)
    answers["buildflow-2", INFO] = EngineError(f"{DOWN}\nmore detail", transient=True)
    info = describe("buildflow-2", FakeDocker(answers))
    assert not info.answers and info.error == DOWN


def test_an_inactive_docker_container_builder() -> None:
    """Not a context: built through the current context with builder=NAME; inactive, and not started."""
    docker = FakeDocker()
    info = describe("bf-container", docker)
    assert (info.context, info.builder, info.driver) == ("", "bf-container", "docker-container")
    assert not info.answers and info.error == "inactive; buildflow starts no builder"
    assert info.image_store == "" and not info.local_images
    assert all("--bootstrap" not in arguments for _, arguments in docker.asked)


def test_a_name_that_is_nothing_here() -> None:
    """Neither a context nor a builder: not answering, and why in words."""
    info = describe("nosuch", FakeDocker())
    assert not info.answers and info.error == "no docker context or buildx builder is named 'nosuch'"


def test_the_current_builder() -> None:
    """'': the current context (no --context), under its own name."""
    docker = FakeDocker()
    info = describe("", docker)
    assert (info.name, info.context, info.builder, info.resolved) == ("", "", "", "default")
    assert info.answers and info.image_store == CONTAINERD_STORE and info.label == "default (current)"
    assert ("", VERSION) in docker.asked


def test_what_a_run_needs_of_the_current_builder_takes_two_commands() -> None:
    """current(): the driver and the image store, without versions or the list of contexts."""
    docker = FakeDocker()
    info = current(docker)
    assert info.driver == "docker" and info.image_store == CONTAINERD_STORE and info.answers and info.registry_cache
    assert sorted(docker.asked) == [("", ("buildx", "inspect")), ("", INFO)]
    classic = FakeDocker({**MACHINE, ("", INFO): STATUS_OVERLAY2})
    assert not current(classic).same_digest


def test_the_current_builder_that_does_not_answer_is_described_with_why() -> None:
    down = FakeDocker({**MACHINE, ("", INFO): EngineError(DOWN, transient=True)})
    info = current(down)
    assert not info.answers and DOWN in info.error


def test_a_timeout_is_not_answering() -> None:
    """A builder that takes too long to say anything is described as not answering."""
    answers = dict(MACHINE)
    answers["", ("buildx", "inspect", "buildflow-2")] = EngineError(
        "no answer within the time limit (killed): exit code 124", transient=True
    )
    info = describe("buildflow-2", FakeDocker(answers))
    assert not info.answers and info.error.startswith("no answer within the time limit")
    assert info.context == "buildflow-2"


def test_inspecting_several_nodes() -> None:
    """A builder of several nodes: every node's platforms; a node in error says which node."""
    text = """\
Name:   elated_tesla
Driver: remote

Nodes:
Name:      elated_tesla0
Endpoint:  tcp://127.0.0.1:1234
Status:    running
Buildkit:  v0.12.5
Platforms: linux/amd64*, linux/386

Name:      elated_tesla1
Endpoint:  tcp://127.0.0.1:1235
Error:     connection refused
"""
    inspection = parse_inspection(text)
    assert inspection.driver == "remote" and inspection.buildkit_version == "v0.12.5"
    assert inspection.platforms == ("linux/amd64", "linux/386")
    assert inspection.problem == "node elated_tesla1: connection refused"


@pytest.mark.parametrize(
    ("status", "store"),
    [
        (STATUS_CONTAINERD, CONTAINERD_STORE),
        (STATUS_OVERLAY2, CLASSIC_STORE),
        ("null", CLASSIC_STORE),
        ("[]", CLASSIC_STORE),
        ("not json", CLASSIC_STORE),
    ],
)
def test_the_image_store(status: str, store: str) -> None:
    """The containerd store is the one whose driver-type is the containerd snapshotter."""
    assert image_store(status) == store
