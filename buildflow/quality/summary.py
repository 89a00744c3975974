"""The size summary a run keeps of an image (in build records and reports), and size budgets checked against it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from buildflow.sizes import human

if TYPE_CHECKING:
    from buildflow.quality.layers import SizeReport

WASTE_SHOWN = 20  # waste entries kept per image in reports and build records (the totals count them all)


@dataclass(frozen=True)
class LayerSummary:
    """One layer of an image: its bytes, its compressed size, the instruction that made it, and whether it is own."""

    index: int
    digest: str
    size: int
    compressed: int
    instruction: str
    added: bool


@dataclass(frozen=True)
class WasteEntry:
    """A file one layer writes and a later one deletes or overwrites, with both instructions."""

    path: str
    bytes: int
    how: str
    written_in: int
    written_by: str
    removed_in: int
    removed_by: str
    here: bool  # hidden by one of the image's own layers


@dataclass(frozen=True)
class SizeSummary:
    """What a run keeps of a size report: the totals, every layer and the WASTE_SHOWN largest waste entries."""

    reference: str
    size: int
    compressed: int
    added: int
    added_layers: int
    wasted: int
    wasted_here: int
    layers: tuple[LayerSummary, ...]
    waste: tuple[WasteEntry, ...]
    waste_entries: int  # waste entries in all, kept or not

    @classmethod
    def of(cls, report: SizeReport) -> SizeSummary:
        """The summary of a full size report."""
        return cls.from_json(size_document(report))

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> SizeSummary:
        """A summary as stored in a build record."""
        return cls(
            reference=document["reference"],
            size=document["size"],
            compressed=document["compressed"],
            added=document["added"],
            added_layers=document["added_layers"],
            wasted=document["wasted"],
            wasted_here=document["wasted_here"],
            layers=tuple(LayerSummary(**layer) for layer in document["layers"]),
            waste=tuple(WasteEntry(**entry) for entry in document["waste"]),
            waste_entries=document.get("waste_entries", len(document["waste"])),
        )

    def to_json(self) -> dict[str, Any]:
        """The summary as stored in build records and JSON reports."""
        return {
            "reference": self.reference,
            "size": self.size,
            "compressed": self.compressed,
            "added": self.added,
            "added_layers": self.added_layers,
            "wasted": self.wasted,
            "wasted_here": self.wasted_here,
            "layers": [asdict(layer) for layer in self.layers],
            "waste": [asdict(entry) for entry in self.waste],
            "waste_entries": self.waste_entries,
        }

    @property
    def own_layers(self) -> tuple[LayerSummary, ...]:
        """The layers the image adds over its parent (all of them when it adds none)."""
        return tuple(layer for layer in self.layers if layer.added) or self.layers


def size_document(report: SizeReport) -> dict[str, Any]:
    """The report as stored in build records and JSON reports: every layer, the WASTE_SHOWN largest waste entries."""
    document = report.to_json()
    document["waste_entries"] = len(document["waste"])
    document["waste"] = document["waste"][:WASTE_SHOWN]
    return document


def over_budget(budget: int, summary: SizeSummary) -> str:
    """Why an image breaks its size budget ('' when it has none or fits), naming its largest own layer."""
    if not budget or summary.size <= budget:
        return ""
    largest = max(summary.own_layers, key=lambda layer: layer.size, default=None)
    hint = f"; its largest layer is {human(largest.size)} from `{largest.instruction}`" if largest else ""
    return f"image is {human(summary.size)}, over its size_budget of {human(budget)}{hint}"
