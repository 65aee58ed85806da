"""Render a page in Debian's headless chromium, offline, and read back its DOM or a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (make sysdeps installs it)")

# Appended to a copy of the report: after the load event, record on <body> whether
# every image decoded. The report's own CSP (img-src data: only) stays in force, so
# an image that needed the network would be blocked and show up as "broken".
_IMAGE_PROBE = """<script>window.addEventListener('load', () => {
  document.body.setAttribute('data-images', Array.from(document.images)
    .map(i => (i.complete && i.naturalWidth > 0) ? 'ok' : 'broken').join(','));
});</script>"""


def chromium_dom(html_path: Path, tmp_path: Path) -> str:
    """The DOM chromium built from ``html_path`` after loading it (headless, offline)."""
    probe = tmp_path / "probe.html"
    html = html_path.read_text(encoding="utf-8")
    html = html.replace("style-src 'unsafe-inline'",
                        "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
    probe.write_text(html.replace("</body>", _IMAGE_PROBE + "</body>"), encoding="utf-8")
    out = subprocess.run(
        [CHROMIUM, *_flags(tmp_path), "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


def chromium_screenshot(html_path: Path, png: Path, tmp_path: Path) -> None:
    subprocess.run(
        [CHROMIUM, *_flags(tmp_path), "--window-size=1100,3000", "--hide-scrollbars",
         f"--screenshot={png}", html_path.as_uri()],
        capture_output=True, timeout=120, check=True)


def _flags(tmp_path: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "data") and v]


def external_references(html: str) -> list[str]:
    """Every src/href that is not an inline data: URI or an in-page anchor."""
    parser = _Links()
    parser.feed(html)
    refs = [r for r in parser.refs if not (r.startswith("data:") or r.startswith("#"))]
    refs += re.findall(r"url\(\s*['\"]?(?!data:)[^)]*\)", html)
    refs += re.findall(r"https?://", html)
    return refs


def sections_of(dom: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', dom)
