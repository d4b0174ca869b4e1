"""Open an HTML file in headless Chromium and report what a reader's browser saw: script errors,
console errors, alerts, and which images decoded."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Runs before the page's own script: records errors (resource failures included, via capture),
# console.error calls and alerts, then after `load` writes them and each image's state into the DOM.
_PROBE = """<script>
window.__seen = [];
window.addEventListener("error", function (e) {
  window.__seen.push("error: " + (e.message || (e.target && e.target.src) || e.type));
}, true);
window.addEventListener("unhandledrejection", function (e) { window.__seen.push("rejection: " + e.reason); });
var __consoleError = console.error;
console.error = function () { window.__seen.push("console: " + Array.from(arguments).join(" ")); __consoleError.apply(console, arguments); };
window.alert = function (m) { window.__seen.push("alert: " + m); };
window.addEventListener("load", function () {
  var probe = document.createElement("pre");
  probe.id = "__probe";
  probe.textContent = JSON.stringify({
    errors: window.__seen,
    images: Array.from(document.images).map(function (i) { return i.complete && i.naturalWidth > 0; }),
    title: document.title,
  });
  document.body.appendChild(probe);
});
</script>"""


class PageCheck(NamedTuple):
    errors: list[str]  # script errors, console errors, alerts, failed loads
    images: list[bool]  # one per <img>: decoded
    title: str
    log: str  # Chromium's own stderr, for messages


def open_page(path: Path, workdir: Path) -> PageCheck:
    """Load `path` (a copy with the probe inserted) in headless Chromium, offline."""
    probed = workdir / f"probed-{path.name}"
    probed.write_text(path.read_text().replace("<head>", "<head>" + _PROBE, 1))
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={workdir / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise AssertionError(f"the page did not finish loading:\n{done.stderr[-3000:]}")
    seen = json.loads(html.unescape(found.group(1)))
    uncaught = [line for line in done.stderr.splitlines() if "Uncaught" in line]
    return PageCheck(seen["errors"] + uncaught, seen["images"], seen["title"], done.stderr)
