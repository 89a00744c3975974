"""The HTML report of a real run with a failing target, opened in a real browser (Debian's headless Chromium, which
make test installs with scripts/browser.sh): it renders without console errors, shows a node and a bar per target,
the failed node coloured failed and the failure's last line; a screenshot of it is taken and is not blank. The
pages of `buildflow test --html` and `release --html` on the same pipeline; an --html that cannot be written."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.integration.conftest import BASE, Project, buildflow, make_project

pytestmark = pytest.mark.integration

MARKER = "BF-MARKER about to fail"
TARGETS = """\
    base: {context: base, tags: ["base:1"]}
    mid: {context: mid, from: base, tags: ["mid:1"], test: ["cat /mid.txt"]}
    leaf:
      context: leaf
      from: mid
      matrix: {flavour: ["a&b", "plain"]}
      args: {FLAVOUR: "{flavour}"}
    broken: {context: broken, from: base, tags: ["broken:1"], test: ["true"]}
    after: {context: after, from: broken, tags: ["after:1"]}
    """
IDS = ["base", "mid", "broken", "leaf[flavour=a&b]", "leaf[flavour=plain]", "after"]
DOCKERFILES = {
    "base": BASE,
    "mid": "ARG BASE_IMAGE=base\nFROM ${BASE_IMAGE}\nRUN echo mid > /mid.txt\n",
    "leaf": 'ARG BASE_IMAGE=mid\nFROM ${BASE_IMAGE}\nARG FLAVOUR\nRUN echo "$FLAVOUR" > /leaf.txt\n',
    "broken": (
        "ARG BASE_IMAGE=base\nFROM ${BASE_IMAGE}\n"
        "RUN echo '<script>alert(1)</script> & friends' && echo \"BF-MARKER about to fail\" && exit 3\n"
    ),
    "after": "ARG BASE_IMAGE=broken\nFROM ${BASE_IMAGE}\n",
}
FAILED_RED = (0xCF, 0x22, 0x2E)  # --failed in report.css: the failed node's stripe, the verdict
# Headless, as root, and kept on this machine: Chromium's own background requests (updates, time) go to a proxy
# address on loopback where nothing listens, and no host name resolves.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser; in make test it must be there (scripts/browser.sh installs it), so its absence fails."""
    found = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
    if found is None:
        pytest.fail("no chromium: run scripts/browser.sh install (make test does)")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The pipeline built once with --keep-going and --html: broken fails, after is blocked, the rest built."""
    project = make_project(tmp_path_factory.mktemp("html"), TARGETS, DOCKERFILES, attempts=1)
    result = project.build("--keep-going", "--html", "out/report.html")
    assert result.returncode == 1, result.stderr
    return project


def _browse(chromium: str, page: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Chromium on the page with its console on stderr."""
    command = [chromium, *FLAGS, "--enable-logging=stderr", "--v=0", *arguments, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=180, cwd=page.parent)


def _console_errors(stderr: str) -> list[str]:
    """The page's console messages that are errors (console.error, uncaught exceptions)."""
    lines = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    return [line for line in lines if "Uncaught" in line or ":ERROR:CONSOLE" in line or "error" in line.lower()]


def _classes(dom: str, prefix: str) -> list[str]:
    """The class attributes in the DOM that begin with `prefix`."""
    return re.findall(rf'class="({re.escape(prefix)}[^"]*)"', dom)


def test_the_page_renders_in_a_browser_with_a_node_and_a_bar_per_target(built: Project, chromium: str) -> None:
    dumped = _browse(chromium, built.root / "out" / "report.html", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr
    assert _console_errors(dumped.stderr) == []
    dom = dumped.stdout
    assert 'data-script="ran"' in dom  # the page's script ran to its end
    nodes, bars = _classes(dom, "node "), _classes(dom, "bar ")
    assert len(nodes) == len(IDS) == len(bars)
    targets = re.findall(r'<g class="node [^"]*" data-target="([^"]*)"', dom)
    assert sorted(targets) == sorted(target.replace("&", "&amp;") for target in IDS)
    assert re.search(r'class="node status-failed[^"]*" data-target="broken"', dom)
    assert re.search(r'class="node status-blocked[^"]*" data-target="after"', dom)
    assert len([node for node in nodes if "status-built" in node]) == 4
    assert MARKER in dom and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in dom
    assert "<script>alert" not in dom


def test_the_timeline_has_the_phases_and_the_critical_path(built: Project) -> None:
    page = (built.root / "out" / "report.html").read_text()
    assert page.count('class="span phase-building"') == 5  # every target built or failing in its build
    assert page.count('class="span phase-testing"') == 3  # mid's test, inherited by both leaves
    assert page.count('class="span phase-pushing"') == 4
    assert re.search(r'class="node status-built critical" data-target="base"', page)
    assert "critical path: base → mid → leaf[flavour=" in page


def test_a_screenshot_of_the_page_is_not_blank(built: Project, chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    taken = _browse(chromium, built.root / "out" / "report.html", f"--screenshot={shot}", "--window-size=1400,900")
    assert taken.returncode == 0 and shot.is_file(), taken.stderr
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1400, 900)
    colours = set(pixels)
    assert len(colours) > 50  # text, nodes, bars: not one flat colour
    assert any(all(abs(a - b) <= 4 for a, b in zip(colour, FAILED_RED, strict=True)) for colour in colours)


def test_the_pages_of_test_and_release(built: Project) -> None:
    """buildflow test --html: mid and the leaves passed (a bar each), broken and after not built; release --html:
    nothing released, the images not ready named."""
    tested = buildflow("test", "--html", "out/test.html", cwd=built.root)
    assert tested.returncode == 1, tested.stderr
    page = (built.root / "out" / "test.html").read_text()
    assert len(_classes(page, "node ")) == len(IDS) == len(_classes(page, "bar "))
    assert len(_classes(page, "node status-passed")) == 3 and page.count('class="span phase-testing"') == 3
    assert len(_classes(page, "node status-not-run")) == 2
    released = buildflow("release", "--html", "out/release.html", cwd=built.root)
    assert released.returncode == 1, released.stderr
    page = (built.root / "out" / "release.html").read_text()
    assert "<h1>buildflow release" in page and "No timeline: a release builds nothing." in page
    assert re.search(r'class="node status-failed[^"]*" data-target="broken"', page)
    assert "not built for its current inputs" in page


def test_an_html_report_that_cannot_be_written_stops_before_building(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", TARGETS, DOCKERFILES)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = project.build("--html", str(blocker / "report.html"), "base")
    assert result.returncode == 2 and f"--html {blocker / 'report.html'}" in result.stderr
    assert "Traceback" not in result.stderr and not project.report_path.exists()


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """The width, height and RGB pixels of an 8-bit RGB or RGBA PNG, as Chromium writes them."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        header, idat = (body, idat) if kind == b"IHDR" else (header, idat + body if kind == b"IDAT" else idat)
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    channels = 3 if colour == 2 else 4
    rows = _unfiltered(zlib.decompress(idat), width * channels, height, channels)
    pixels = [tuple(row[x : x + 3]) for row in rows for x in range(0, len(row), channels)]
    return width, height, pixels


def _unfiltered(raw: bytes, stride: int, height: int, step: int) -> list[bytes]:
    """The scanlines of a PNG with its per-line filters (none, sub, up, average, Paeth) undone."""
    rows: list[bytes] = []
    previous = bytearray(stride)
    for number in range(height):
        kind, line = raw[number * (stride + 1)], bytearray(raw[number * (stride + 1) + 1 : (number + 1) * (stride + 1)])
        for i in range(stride):
            left, up = line[i - step] if i >= step else 0, previous[i]
            corner = previous[i - step] if i >= step else 0
            line[i] = (line[i] + _predictor(kind, left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def _predictor(kind: int, left: int, up: int, corner: int) -> int:
    """What a PNG filter adds back to a byte."""
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    guess = left + up - corner
    return min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))[2]
