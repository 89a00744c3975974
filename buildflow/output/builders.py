"""Showing builders: one row (or JSON object) per builder, with what it is and what it can do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from buildflow.output.render import aligned
from buildflow.run.builders import Builder

HEADER = ["NAME", "DRIVER", "ENGINE", "BUILDKIT", "STORE", "PLATFORMS", "CAN", "STATUS"]
_LEGEND = "CAN: what each builder can do; docs/builders.md says what each word means"


def builders_table(builders: Sequence[Builder]) -> str:
    """An aligned table, one builder per line, then what CAN means."""
    rows = [_row(builder) for builder in builders]
    return "\n".join([*aligned(HEADER, rows), "", _LEGEND])


def _row(builder: Builder) -> list[str]:
    """A builder's cells ('-' for what it does not say; only name, driver and status when it does not answer)."""
    info = builder.info
    if not info.answers:
        return [info.label, info.driver or "-", "-", "-", "-", "-", "-", status(builder)]
    cells = [
        info.engine_version,
        info.buildkit_version,
        info.image_store,
        ", ".join(info.platforms),
        ", ".join(info.capabilities),
    ]
    return [info.label, info.driver or "-", *(cell or "-" for cell in cells), status(builder)]


def status(builder: Builder) -> str:
    """'ok', or 'does not answer: why'."""
    return "ok" if builder.info.answers else f"does not answer: {builder.info.error or 'no reason given'}"


def builders_json(builders: Sequence[Builder]) -> str:
    """The builders as a JSON list: every field of each, its capabilities and status."""
    return json.dumps([_document(builder) for builder in builders], indent=2)


def _document(builder: Builder) -> dict[str, Any]:
    """One builder as a JSON object."""
    info = builder.info
    return {
        "name": info.name or info.resolved,
        "current": not info.name,
        "context": info.context,
        "builder": info.builder,
        "driver": info.driver,
        "answers": info.answers,
        "error": info.error,
        "engine_version": info.engine_version,
        "buildkit_version": info.buildkit_version,
        "image_store": info.image_store,
        "platforms": list(info.platforms),
        "capabilities": list(info.capabilities) if info.answers else [],
        "jobs": builder.spec.jobs or None,
        "declared_platforms": list(builder.spec.platforms),
        "status": status(builder),
    }
