"""The shipped pipelines validate and plan as their READMEs say."""

from __future__ import annotations

from buildflow.pipeline.loader import load_pipeline
from buildflow.plan.planner import make_plan
from tests.conftest import REPO


def test_t2t_pipeline() -> None:
    pipeline = load_pipeline(REPO / "pipelines" / "t2t" / "buildflow.yaml")
    plan = make_plan(pipeline)
    assert len(plan.steps) == 12 and len(pipeline.generations) == 5
    nmt = pipeline.targets["nmt[cuda=9.0,tf=1.8.0,device=gpu]"]
    assert nmt.tags == ("localhost:5000/t2t/t2t:nmt",)
    assert pipeline.targets["t2t[tf=1.8.0,device=cpu]"].tags == ("localhost:5000/t2t/t2t:tf1.8-t2t1.6",)
    assert pipeline.targets["tensorflow[cuda=10.0,tf=1.15.5,device=gpu]"].args["TF_PACKAGE"] == "tensorflow-gpu"
    assert all(edge.kind == "from" for target in pipeline.targets.values() for edge in target.parents)
    assert [s.target.name for s in make_plan(pipeline, ["nmt"]).steps] == ["base", "cuda", "tensorflow", "t2t", "nmt"]


def test_recommenders_pipeline() -> None:
    pipeline = load_pipeline(REPO / "pipelines" / "recommenders" / "buildflow.yaml")
    assert list(pipeline.targets) == ["recommenders[env=cpu]", "recommenders[env=pyspark]", "recommenders[env=gpu]"]
    assert pipeline.targets["recommenders[env=gpu]"].args["ENV"] == "gpu"
    assert len({target.fingerprint for target in pipeline.targets.values()}) == 3


def test_the_readme_shows_real_output() -> None:
    import subprocess
    import sys

    readme = (REPO / "README.md").read_text()
    for command in ("plan --offline", "graph"):
        shown = readme.split(f"$ buildflow {command} -f examples/quickstart/buildflow.yaml\n", 1)[1]
        shown = shown.split("\n\n$ ", 1)[0].split("\n```", 1)[0]
        real = subprocess.run(
            [sys.executable, "-m", "buildflow", *command.split(), "-f", "examples/quickstart/buildflow.yaml"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert shown.rstrip() == real.rstrip()


def test_demo_pipeline() -> None:
    pipeline = load_pipeline(REPO / "pipelines" / "demo" / "buildflow.yaml")
    assert list(pipeline.targets) == ["base", "runtime", "framework", "app"]
    assert pipeline.targets["app"].tags == (
        "localhost:5000/demo/app:latest",
        "localhost:5000/demo/app:numpy1.24-py3.11",
    )
    assert pipeline.generations == [["base"], ["runtime"], ["framework"], ["app"]]
