"""``logs html``: a self-contained page with the verdict, the picture and the interrupt table."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.browser import NO_BROWSER, browser, dump_dom
from tests.logs.conftest import cli


class _Page(HTMLParser):
    """Collects tags, attributes, text and table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _report(log: Path, tmp_path: Path) -> Path:
    out = tmp_path / "report.html"
    status, _text, _err = cli("logs", "html", str(log), "-o", str(out))
    assert status == 0
    return out


def test_html_has_verdict_picture_and_interrupt_table(failing_log: Path, tmp_path: Path) -> None:
    """Parsed with html.parser: the verdict names the invariant, an inline SVG with lanes,
    the SPI 32 row, and nothing that loads from elsewhere."""
    page = _Page()
    page.feed(_report(failing_log, tmp_path).read_text())
    text = " ".join(page.text)
    assert "deactivation-lost (liveness) at step" in text
    assert "SPI 32 is still Active" in text
    tags = [t for t, _ in page.tags]
    assert "svg" in tags and tags.count("rect") >= 5
    lanes = {t.strip() for t in page.text} & {"vcpu0", "vcpu1", "pcpu0", "pcpu1", "distributor"}
    assert len(lanes) == 5
    spi = next(r for r in page.rows if r and r[0] == "SPI 32")
    assert "vcpu1 DIR not trapped x1" in spi and "Active, on vcpu0's ap_list" in spi
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "img", "iframe"), tag
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            assert not value.startswith(("http:", "https:", "//")), (tag, attrs)


def test_html_of_a_passing_run_says_ok(passing_log: Path, tmp_path: Path) -> None:
    """merged: an ok verdict and TDIR shading in the picture."""
    html = _report(passing_log, tmp_path).read_text()
    assert 'class="verdict ok"' in html and "ok: no violation" in html
    assert "#f4a261" in html  # a guest slice run with TDIR set


def test_the_timeline_comes_first_and_reads_in_kernel_order(failing_log: Path,
                                                            tmp_path: Path) -> None:
    """Timeline before the verdict; each vCPU above its pCPU; a step axis; the IAR, EOIR
    and DIR of SPI 32 (the interrupt the violation names) labelled, and a lane for it."""
    page = _Page()
    page.feed(_report(failing_log, tmp_path).read_text())
    text = [t.strip() for t in page.text if t.strip()]
    assert text.index("Timeline") < text.index("Verdict")
    lanes = [t for t in text if t in ("vcpu0", "vcpu1", "pcpu0", "pcpu1", "distributor")]
    assert lanes[:5] == ["vcpu0", "pcpu0", "vcpu1", "pcpu1", "distributor"]
    assert "step (vt)" in text
    labels = {t for t in text if t.split(" ")[0] in ("IAR", "EOIR", "DIR")}
    assert {"IAR 32", "EOIR 32", "DIR 32"} <= labels, labels
    assert sum(1 for tag, attrs in page.tags if attrs.get("class") == "axis") >= 5
    # SPI 32 has a lane of its own, below the CPUs, with its queueing and the guest's ack
    assert text.index("SPI 32") > text.index("distributor")
    assert {"queued", "IAR", "EOIR", "deact"} <= set(text)


@pytest.mark.skipif(browser() is None, reason=NO_BROWSER)
def test_html_renders_in_headless_chromium(failing_log: Path, tmp_path: Path) -> None:
    """Chromium loads the page offline and its rendered DOM has the verdict and the table."""
    dom = dump_dom(_report(failing_log, tmp_path), tmp_path / "profile")
    assert "deactivation-lost (liveness)" in dom
    assert "<svg" in dom and "SPI 32" in dom
