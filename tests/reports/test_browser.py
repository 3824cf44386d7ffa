"""The report opened in a real headless Chromium: every plot loads and draws something, the
verdict table is there with rows, the page's script ran, and nothing errs in the console."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Browser, chromium
from PIL import Image, ImageStat

from reports.render import Rendered

BINARY = chromium()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="no chromium binary (scripts/setup-system.sh installs Debian's "
    "chromium; apt-get install chromium)")

#: What the page says about itself once loaded (sizes in CSS pixels).
PROBE = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height}; };
  const verdicts = document.querySelector("#verdicts");
  return {
    ready: document.documentElement.getAttribute("data-ready"),
    images: [...document.querySelectorAll("img.plot")].map((img) => ({
      src: img.getAttribute("src"), complete: img.complete, natural: img.naturalWidth,
      box: box(img)})),
    verdicts: verdicts ? {rows: verdicts.querySelectorAll("tbody tr").length,
                          text: verdicts.innerText, box: box(verdicts)} : null,
  };
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert BINARY is not None
    with Browser(BINARY) as b:
        yield b


def blank(shot: Image.Image, box: dict[str, float]) -> bool:
    """Whether a region of the screenshot is one flat color (nothing drawn)."""
    region = shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["w"]),
                        int(box["y"] + box["h"]))).convert("L")
    return ImageStat.Stat(region).stddev[0] < 5 or len(region.getcolors(1 << 16) or []) < 8


def test_the_report_draws_its_plots_and_verdicts_without_errors(
        browser: Browser, rendered: Rendered, tmp_path: Path) -> None:
    browser.errors.clear()
    browser.open(rendered.page.as_uri())
    info: dict[str, Any] = browser.evaluate(PROBE)
    size = browser.screenshot(tmp_path / "report.png")
    assert browser.errors == []
    assert info["ready"] == "true"  # the page's script ran to its end
    shot = Image.open(tmp_path / "report.png")
    assert shot.size == size
    images = info["images"]
    assert len(images) >= 9
    for img in images:
        assert img["complete"] and img["natural"] > 0, img["src"]
    # Plots inside closed <details> have no box; every visible one drew something.
    visible = [img for img in images if img["box"]["w"] > 50 and img["box"]["h"] > 50]
    assert {Path(i["src"]).name for i in visible} >= {
        "swarm-latency.png", "swarm-connections.png", "swarm-node.png", "scheduler.png",
        "scenario-reconnects.png"}
    for img in visible:
        assert not blank(shot, img["box"]), img["src"]
    verdicts = info["verdicts"]
    assert verdicts is not None and verdicts["rows"] == 2
    assert "idle-timeout-1006/incident" in verdicts["text"]
    assert verdicts["box"]["h"] > 40 and not blank(shot, verdicts["box"])


def test_the_index_page_loads_without_errors(browser: Browser, rendered: Rendered) -> None:
    assert rendered.index is not None
    browser.errors.clear()
    browser.open(rendered.index.as_uri())
    assert browser.evaluate("document.querySelectorAll('#run-table tbody tr').length") == 1
    assert browser.evaluate("document.documentElement.getAttribute('data-ready')") == "true"
    assert browser.errors == []


def test_the_checks_catch_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    """The harness sees script errors and images that did not load (so the test above can
    fail)."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img class="plot" src="missing.png"><script>notDefined();</script>'
                    "</body></html>")
    browser.errors.clear()
    browser.open(page.as_uri())
    info = browser.evaluate(PROBE)
    assert info["images"][0]["natural"] == 0
    assert any("notDefined" in e for e in browser.errors), browser.errors
    assert any("missing.png" in e for e in browser.errors), browser.errors


def test_blank_tells_a_flat_region_from_a_drawn_one() -> None:
    flat = Image.new("RGB", (200, 100), "white")
    box = {"x": 0, "y": 0, "w": 200, "h": 100}
    assert blank(flat, box)
    drawn = flat.copy()
    for i in range(0, 200, 3):
        drawn.putpixel((i, 50), (i, 0, 255 - i))
        drawn.putpixel((i, 20 + i // 5), (0, 0, 0))
    assert not blank(drawn, box)
