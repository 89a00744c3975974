"""Supply chain and overrides without an engine: attest, ssh, annotations, output: oci, --set."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from buildflow.engine.builders import CLASSIC_STORE, BuilderInfo
from buildflow.engine.buildx import _build_arguments, with_annotations
from buildflow.engine.layout import unpack_layout
from buildflow.errors import UsageError
from buildflow.model import Attest, SshForward
from buildflow.plan.planner import make_plan
from buildflow.run.builders import check_supply
from buildflow.run.naming import BuildOptions, build_request
from tests.conftest import dockerfiles, load, one_problem, problems
from tests.unit.test_cli import run

PIPELINE = """\
    version: 1
    registry: localhost:5000/demo
    targets:
      app:
        context: app
        tags: ["app:1"]
        attest: {sbom: true, provenance: max}
        ssh: [{id: git, paths: [keys/id_ed25519]}]
        annotations: {org.opencontainers.image.title: "a, b"}
        output: {type: oci, dest: out}
      kid: {context: kid, from: app, tags: ["kid:1"], output: oci}
    """
FILES = dockerfiles("app", "kid")


def test_the_settings_reach_the_target(tmp_path: Path) -> None:
    pipeline = load(tmp_path, PIPELINE, FILES)
    app, kid = pipeline.targets["app"], pipeline.targets["kid"]
    assert app.attest == Attest(sbom="default", provenance="max")
    assert app.ssh == (SshForward("git", ("keys/id_ed25519",)),)
    assert app.annotations == {"org.opencontainers.image.title": "a, b"}
    assert app.oci_dir == tmp_path / "out"
    assert kid.oci_dir == tmp_path / ".buildflow" / "oci"
    assert not kid.attest and kid.ssh == () and kid.annotations == {}


def test_an_sbom_generator_and_provenance_off(tmp_path: Path) -> None:
    text = PIPELINE.replace(
        "{sbom: true, provenance: max}", "{sbom: {generator: localhost:5000/scan:1}, provenance: false}"
    )
    assert load(tmp_path, text, FILES).targets["app"].attest == Attest(sbom="localhost:5000/scan:1")


def test_defaults_give_every_target_attestations_and_annotations_merge(tmp_path: Path) -> None:
    text = """\
        version: 1
        defaults: {attest: {provenance: min}, annotations: {org.a: "1", org.b: "2"}}
        targets:
          app: {context: app, annotations: {org.b: "3"}}
        """
    app = load(tmp_path, text, FILES).targets["app"]
    assert app.attest == Attest(provenance="min")
    assert app.annotations == {"org.a": "1", "org.b": "3"}


def _fingerprint(tmp_path: Path, extra: str) -> str:
    text = f"version: 1\ntargets:\n  app: {{context: app{extra}}}\n"
    return load(tmp_path, text, FILES).targets["app"].fingerprint


def test_attestations_and_annotations_are_in_the_fingerprint_ssh_is_not(tmp_path: Path) -> None:
    plain = _fingerprint(tmp_path, "")
    assert _fingerprint(tmp_path, ", attest: {provenance: min}") != plain
    assert _fingerprint(tmp_path, ", attest: {provenance: max}") != _fingerprint(
        tmp_path, ", attest: {provenance: min}"
    )
    assert _fingerprint(tmp_path, ", annotations: {org.a: x}") != plain
    assert _fingerprint(tmp_path, ", annotations: {org.a: y}") != _fingerprint(tmp_path, ", annotations: {org.a: x}")
    assert _fingerprint(tmp_path, ", ssh: [default]") == plain
    assert _fingerprint(tmp_path, ", output: oci") == plain


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("attest: {provenance: full}", "targets.app.attest.provenance"),
        ("attest: {sbom: maybe}", "targets.app.attest.sbom"),
        ("attest: {}", "targets.app.attest"),
        ("ssh: [default, default]", "targets.app.ssh"),
        ("ssh: [{paths: [a]}]", "targets.app.ssh[0]"),
        ("annotations: {'bad key': x}", "targets.app.annotations"),
        ("output: tarball", "targets.app.output"),
    ],
)
def test_bad_settings_name_their_field(tmp_path: Path, setting: str, field: str) -> None:
    text = f"version: 1\ntargets:\n  app: {{context: app, {setting}}}\n"
    line = one_problem(tmp_path, text, FILES)
    assert f": {field}" in line, line


def test_the_build_request_carries_them(tmp_path: Path) -> None:
    pipeline = load(tmp_path, PIPELINE, FILES)
    request = build_request(
        pipeline.targets["app"], {}, registry=pipeline.registry, root=tmp_path, options=BuildOptions()
    )
    assert request.attest == Attest(sbom="default", provenance="max")
    assert request.ssh == (SshForward("git", (str(tmp_path / "keys" / "id_ed25519"),)),)
    arguments = _build_arguments(request, tmp_path / "m.json", {"type": "image"})
    assert arguments["provenance"] == {"mode": "max"}
    assert arguments["sbom"] is True
    assert arguments["ssh"] == f"git={tmp_path / 'keys' / 'id_ed25519'}"
    kid = build_request(
        pipeline.targets["kid"],
        {"app": "x@sha256:1"},
        registry=pipeline.registry,
        root=tmp_path,
        options=BuildOptions(),
    )
    plain = _build_arguments(kid, tmp_path / "m.json", {"type": "image"})
    assert plain["provenance"] is False and plain["sbom"] is None and plain["ssh"] is None


def test_annotations_go_to_the_manifest_and_to_the_index_when_there_is_one() -> None:
    output = {"type": "image", "name": "r/a:1"}
    assert with_annotations(output, {"org.a": "1"}, index=False) == {**output, "annotation-manifest.org.a": "1"}
    both = with_annotations(output, {"org.a": "1"}, index=True)
    assert both["annotation-manifest.org.a"] == both["annotation-index.org.a"] == "1"
    quoted = with_annotations(output, {"org.t": 'a, "b"'}, index=False)
    field = ",".join(f"{key}={value}" for key, value in quoted.items()).split(",", 2)[2]
    assert field == '"annotation-manifest.org.t=a, ""b"""'  # one CSV field, as buildx reads --output
    assert with_annotations(output, None, index=True) == output


def _info(name: str, *, driver: str = "docker", store: str = "containerd") -> BuilderInfo:
    return BuilderInfo(name=name, driver=driver, image_store=store if driver == "docker" else "")


def test_the_classic_store_refuses_attestations_and_annotations_before_building(tmp_path: Path) -> None:
    plan = make_plan(load(tmp_path, PIPELINE, FILES))
    with pytest.raises(UsageError) as refused:
        check_supply(plan, [_info("old", store=CLASSIC_STORE)], "buildflow.yaml", push=True)
    lines = str(refused.value).splitlines()
    assert lines[0].startswith("buildflow.yaml: targets.app.attest: old (docker driver, classic image store)")
    assert lines[1].startswith("buildflow.yaml: targets.app.annotations: old")
    check_supply(plan, [_info("new")], "buildflow.yaml", push=True)


def test_an_oci_layout_needs_an_image_store_or_no_push(tmp_path: Path) -> None:
    plan = make_plan(load(tmp_path, PIPELINE, FILES))
    remote = _info("farm", driver="docker-container")
    with pytest.raises(UsageError) as refused:
        check_supply(plan, [remote], "buildflow.yaml", push=True)
    assert "targets.kid.output: farm pushes from BuildKit" in str(refused.value)
    check_supply(plan, [remote], "buildflow.yaml", push=False)


def _tar(tmp_path: Path, members: dict[str, bytes]) -> Path:
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_a_layout_is_unpacked_whole_and_nothing_outside_it(tmp_path: Path) -> None:
    archive = _tar(tmp_path, {"index.json": b"{}", "blobs/sha256/ab": b"x", "../escape": b"no", "/abs": b"no"})
    directory = tmp_path / "out" / "app"
    directory.mkdir(parents=True)
    (directory / "stale").write_text("old run")
    unpack_layout(archive, directory)
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()) == [
        "blobs/sha256/ab",
        "index.json",
    ]
    assert not (tmp_path / "out" / "escape").exists()
    with pytest.raises(OSError, match=r"no index\.json"):
        unpack_layout(_tar(tmp_path, {"manifest.json": b"[]"}), directory)


def test_a_rebuild_says_the_attestations_or_annotations_changed(tmp_path: Path) -> None:
    from buildflow.run.freshness import changes
    from buildflow.run.records import inputs

    text = "version: 1\ntargets:\n  app: {context: app%s}\n"
    plain = load(tmp_path, text % "", FILES)
    asked = load(tmp_path, text % ", attest: {provenance: min}, annotations: {org.a: x}", FILES)
    before, after = inputs(plain.targets["app"], plain), inputs(asked.targets["app"], asked)
    assert "attest" not in before and "annotations" not in before  # records without them are as they were
    assert changes(before, after) == ["attestations changed", "annotation org.a added"]
    assert changes(after, after) == []


# ---- --set ---------------------------------------------------------------------------------------------------

SET_PIPELINE = """\
    version: 1
    targets:
      app: {context: app, args: {VERSION: "1"}}
      kid: {context: kid, from: app}
    """


def test_set_overrides_fields_of_one_target_or_all(tmp_path: Path) -> None:
    sets = (
        "app.args.VERSION=2",
        "*.platforms=linux/amd64,linux/arm64",
        "kid.annotations.org.opencontainers.image.title=t",
        "app.attest.provenance=min",
        "kid.push=false",
    )
    pipeline = load(tmp_path, SET_PIPELINE, FILES, sets=sets)
    app, kid = pipeline.targets["app"], pipeline.targets["kid"]
    assert app.args == {"VERSION": "2"}
    assert app.platforms == kid.platforms == ("linux/amd64", "linux/arm64")
    assert kid.annotations == {"org.opencontainers.image.title": "t"}
    assert app.attest == Attest(provenance="min") and kid.push is False
    assert app.fingerprint != load(tmp_path, SET_PIPELINE, FILES).targets["app"].fingerprint


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("nope.args.X=1", "--set nope.args.X=1: unknown target 'nope'; the targets are: app, kid (or * for all)"),
        ("app.colour=red", "--set app.colour=red: unknown field 'colour'"),
        ("app.args", "--set app.args: expected ID.FIELD=VALUE"),
        ("app=1", "--set app=1: expected ID.FIELD=VALUE"),
        ("app.network=bridge", "--set app.network=bridge: targets.app.network: 'bridge' is not one of"),
        ("*.push=maybe", "--set *.push=maybe: targets.app.push:"),
        (
            "app.attest.provenance=full",
            "--set app.attest.provenance=full: targets.app.attest.provenance: 'full' is not one of min, max, false",
        ),
    ],
)
def test_a_bad_set_names_the_option_and_the_field(tmp_path: Path, given: str, expected: str) -> None:
    lines = problems(tmp_path, SET_PIPELINE, FILES, sets=(given,))
    assert lines[0].startswith(expected), lines


def test_a_bad_set_exits_2_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tests.conftest import write_pipeline

    file = write_pipeline(tmp_path, SET_PIPELINE, FILES)
    code, _, err = run(capsys, "validate", "-f", str(file), "--set", "app.colour=red")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "unknown field 'colour'" in err
    code, out, err = run(capsys, "--set", "app.args.VERSION=3", "plan", "-f", str(file), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["targets"][0]["args"] == {"VERSION": "3"}
