"""Sizes as people write and read them: '200MB' in a pipeline, '1.2 GB' in a report."""

from __future__ import annotations

import re

_SI_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}{b}": 1000**n for n, p in enumerate("kmgtp", 1) for b in ("", "b")},
    **{f"{p}i{b}": 1024**n for n, p in enumerate("kmgtp", 1) for b in ("", "b")},
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
_UNITS_HELP = "B, kB, MB, GB, TB (1000-based) or KiB, MiB, GiB, TiB (1024-based), e.g. '200MB', '1.5GB' or '512KiB'"


def human(size: int) -> str:
    """A size in SI units (1000-based, as docker shows them): '12 B', '340 kB', '1.2 MB'."""
    sign, value = ("-" if size < 0 else ""), abs(size)
    if value < 1000:
        return f"{sign}{value} B"
    scaled = float(value)
    for unit in _SI_UNITS[1:]:
        scaled /= 1000
        if round(scaled, 1) < 10:
            return f"{sign}{scaled:.1f} {unit}"
        if round(scaled) < 1000 or unit == _SI_UNITS[-1]:
            return f"{sign}{scaled:.0f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def parse_size(text: str | int) -> int:
    """Bytes from a size: 1234, '200MB', '1.5GB', '512KiB', '100 MB' (k/M/G/T are 1000-based, Ki/Mi/Gi/Ti 1024)."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ValueError(f"invalid size {text!r}: expected a number of bytes or a size with a unit: {_UNITS_HELP}")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid size {text}: a size cannot be negative")
        return text
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise ValueError(f"invalid size {text!r}: expected a number with an optional unit: {_UNITS_HELP}")
    from decimal import Decimal, InvalidOperation  # exact: '1.1GB' is 1,100,000,000 bytes, not a float's guess

    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise ValueError(f"invalid size {text!r}: expected a number with an optional unit: {_UNITS_HELP}") from None
    return int((number * _UNITS[unit]).to_integral_value())
