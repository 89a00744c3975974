"""`buildflow test`: the image tests of targets already built for their current inputs, several targets at once."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from buildflow.engine.base import Engine, EngineError
from buildflow.model import Pipeline
from buildflow.plan.planner import Plan, ids
from buildflow.run.imagetests import ImageTester, TestResult, built_image, image_tests, run_tests

TestResults = dict[str, list[TestResult]]  # the results of each target's tests, by target id
NotRun = dict[str, str]  # why a target's tests could not run, by target id


def run_selected_tests(
    plan: Plan, engine: Engine, names: Sequence[str], *, push: bool, jobs: int
) -> tuple[TestResults, NotRun]:
    """Test the named targets (all without names), `jobs` targets at a time: the results, and why some could not run."""
    pipeline = plan.pipeline
    chosen = chosen_ids(plan, names)
    results: TestResults = {}
    problems: NotRun = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="test") as pool:
        outcomes = list(pool.map(lambda target_id: run_target_tests(engine, pipeline, target_id, push), chosen))
    for target_id, outcome in zip(chosen, outcomes, strict=True):
        if isinstance(outcome, str):
            problems[target_id] = outcome
        elif outcome:
            results[target_id] = outcome
    return results, problems


def chosen_ids(plan: Plan, names: Sequence[str]) -> list[str]:
    """The images whose tests run: those of the named targets, or with no names every image of the plan."""
    return ids(plan.pipeline, names) if names else [step.target.id for step in plan.steps]


def run_target_tests(engine: ImageTester, pipeline: Pipeline, target_id: str, push: bool) -> list[TestResult] | str:
    """The results of a target's tests on its built image, or why they could not run."""
    tests = image_tests(pipeline, target_id)
    if not tests:
        return []
    try:
        image = built_image(engine, pipeline, pipeline.targets[target_id], push=push)
        if image is None:
            return f"not built for its current inputs: run buildflow build {target_id}"
        return run_tests(engine, image, tests)
    except EngineError as error:
        return str(error)
