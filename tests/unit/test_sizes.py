"""Size budgets and the size document kept in records and reports."""

from __future__ import annotations

from buildflow.quality.layers import LayerInfo, SizeReport, Waste
from buildflow.quality.summary import WASTE_SHOWN, SizeSummary, over_budget, size_document

LAYERS = (
    LayerInfo(0, "sha256:a", 2_000_000, 900_000, "COPY busybox /bin/busybox"),
    LayerInfo(1, "sha256:b", 4_000_000, 10_000, "RUN dd if=/dev/zero of=/big"),
    LayerInfo(2, "sha256:c", 1_000, 500, "RUN echo hi > /hi"),
)


def report(waste: tuple[Waste, ...] = ()) -> SizeReport:
    return SizeReport("r@sha256:x", 6_001_000, 910_500, LAYERS, 4_001_000, 2, sum(w.bytes for w in waste), waste)


def test_an_image_within_its_budget_or_without_one_passes() -> None:
    summary = SizeSummary.of(report())
    assert over_budget(0, summary) == ""
    assert over_budget(6_001_000, summary) == ""


def test_an_image_over_its_budget_names_its_largest_own_layer() -> None:
    assert over_budget(5_000_000, SizeSummary.of(report())) == (
        "image is 6.0 MB, over its size_budget of 5.0 MB; its largest layer is 4.0 MB from "
        "`RUN dd if=/dev/zero of=/big`"
    )


def test_the_document_keeps_the_largest_waste_entries_and_counts_them_all() -> None:
    waste = tuple(Waste(f"/f{n}", 1_000 + n, 1, 2, "deleted") for n in range(WASTE_SHOWN + 5))
    document = size_document(report(waste))
    assert document["waste_entries"] == WASTE_SHOWN + 5
    assert len(document["waste"]) == WASTE_SHOWN
    assert document["waste"][0]["path"] == f"/f{WASTE_SHOWN + 4}"
    assert document["wasted"] == sum(w.bytes for w in waste)
