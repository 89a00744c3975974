"""The pipeline-wide limits: images, parents, visible variables and rendered characters."""

from __future__ import annotations

from dataclasses import dataclass, field

from buildflow.errors import FieldPath
from buildflow.pipeline import matrix
from buildflow.pipeline.resolve.problems import Problems
from buildflow.pipeline.templates import MAX_RENDERED_TOTAL
from buildflow.pipeline.variables import MAX_VISIBLE_VARIABLES


class LimitExceeded(Exception):
    """A pipeline-wide limit was passed: resolution stops at once (the problem is recorded)."""


class TooManyImages(Exception):
    """A target expands past its limit (raised before its choices of parents fill the memory)."""


@dataclass(slots=True)
class Budget:
    """What the images resolved so far add up to, against the pipeline-wide limits."""

    problems: Problems = field(repr=False)
    images: int = 0
    variables: int = 0
    edges: int = 0
    characters: int = 0

    def spend(self, name: str, *, images: int = 0, variables: int = 0, edges: int = 0) -> None:
        """Count what a target adds to the pipeline; past a pipeline-wide limit, record it and stop resolving."""
        self.images += images
        self.variables += variables
        self.edges += edges
        if self.images > matrix.MAX_IMAGES_PER_PIPELINE:
            message = (
                f"expands to more than {matrix.MAX_IMAGES_PER_PIPELINE:,} images, the limit per pipeline: "
                "exclude combinations or split the pipeline"
            )
            self.problems.add(("targets",), message)
        elif self.edges > matrix.MAX_EDGES_PER_PIPELINE:
            message = (
                f"the images have more than {matrix.MAX_EDGES_PER_PIPELINE:,} parents in all, the limit per "
                f"pipeline ({name} has {edges:,} per image): depend on fewer targets or split the pipeline"
            )
            self.problems.add(("targets", name), message)
        elif self.variables > MAX_VISIBLE_VARIABLES:
            message = (
                f"the images see more than {MAX_VISIBLE_VARIABLES:,} variables in all, the limit per pipeline "
                f"({name} sees {variables:,}; variables flow down to every descendant): declare fewer variables"
            )
            self.problems.add(("targets", name), message)
        else:
            return
        raise LimitExceeded

    def spend_characters(self, path: FieldPath, count: int) -> None:
        """Count rendered characters; past MAX_RENDERED_TOTAL, record it and stop resolving."""
        self.characters += count
        if self.characters > MAX_RENDERED_TOTAL:
            message = (
                f"templates render more than {MAX_RENDERED_TOTAL:,} characters in all, the limit per pipeline; "
                "use shorter variables"
            )
            self.problems.add(path, message)
            raise LimitExceeded
