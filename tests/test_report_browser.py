"""The report in a real browser: Debian's headless Chromium, networking off (tests/browser.py)."""

from __future__ import annotations

import re

from tests.browser import Page

# Sections that hold tables or links only, by design: the reading notes, the data-quality counts, the data docs.
WITHOUT_CHARTS = {"reading", "data-quality", "data-docs"}
# A figure with nothing to draw must say why (suppression leaves nothing, or England's figure is suppressed).
NOTHING_TO_DRAW = re.compile(r"^Nothing (to chart|to plot|to compare|published to chart)\b")

SECTIONS = """
[...document.querySelectorAll('main > section')].map(section => {
  const marks = [...section.querySelectorAll('svg.chart circle, svg.chart rect')].filter(m => m.querySelector('title'));
  const shown = marks.filter(m => {
    const r = m.getBoundingClientRect(), box = m.ownerSVGElement.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.left >= box.left - 1 && r.right <= box.right + 1
      && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  });
  return {
    id: section.id,
    figures: section.querySelectorAll('figure').length,
    charts: [...section.querySelectorAll('figure svg.chart')].map(svg => ({
      width: svg.getBoundingClientRect().width,
      marks: [...svg.querySelectorAll('circle, rect')].filter(m => m.querySelector('title')).length,
    })),
    marks: marks.length,
    shown: shown.length,
    reasons: [...section.querySelectorAll('figure .nochart')].map(p => p.textContent.trim()),
  };
})
"""


def test_the_report_in_headless_chromium(report_warehouse, tmp_path):
    report = report_warehouse[1]
    with Page(tmp_path / "profile") as page:
        page.open(report.as_uri())
        sections = page.evaluate(SECTIONS)
        title = page.evaluate("document.title")
        shot = page.screenshot(tmp_path / "report.png")
    log = page.log
    assert not log.console_errors, log.console_errors
    assert not log.exceptions, log.exceptions
    assert log.requests and set(log.requests) == {report.as_uri()}, log.requests  # nothing but the file itself
    assert title.startswith("Drug treatment outcomes")
    ids = [s["id"] for s in sections]
    assert len(ids) >= 12 and {"successful-completion", "areas-successful-completion", "linkage-quality"} <= set(ids)
    drawn = []
    for s in sections:
        if s["id"] in WITHOUT_CHARTS:
            continue
        assert s["figures"] >= 1, f"{s['id']} has no figure"
        # Every chart drawn shows its data: marks with a value, laid out inside the chart's box.
        assert all(c["width"] > 100 and c["marks"] > 0 for c in s["charts"]), s
        assert s["shown"] == s["marks"], s
        if s["charts"]:
            drawn.append(s["id"])
        else:  # nothing to draw: the figure says why instead
            assert s["reasons"] and all(NOTHING_TO_DRAW.match(r) for r in s["reasons"]), s
    # The outcome sections whose published England figures this population fills are drawn.
    expected = {"successful-completion", "treatment-flow", "deaths-after-treatment", "linkage-quality"}
    assert expected <= set(drawn), drawn
    assert "areas-successful-completion" in drawn, drawn
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000


def test_the_browser_log_catches_console_errors_and_requests_to_other_hosts(tmp_path):
    page_file = tmp_path / "hostile.html"
    page_file.write_text(
        '<!DOCTYPE html><html><head><title>t</title></head><body><img src="http://example.org/x.png">'
        "<script>console.error('drawn wrong'); undefined_function();</script></body></html>"
    )
    with Page(tmp_path / "profile") as page:
        page.open(page_file.as_uri())
    assert "http://example.org/x.png" in page.log.requests
    assert any("drawn wrong" in e for e in page.log.console_errors)
    assert page.log.exceptions
