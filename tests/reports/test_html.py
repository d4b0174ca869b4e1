"""The HTML report: written by `study run`, `study report` and `study compare`; self-contained,
escaped, and checked in a real (headless) browser."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.datasets import load_digits

from reports.html import REPORT_FILE, write_report
from study.cli import main
from tests.conftest import tiny_campaign, to_toml
from tests.reports.browser import CHROMIUM, open_page

HOSTILE = "<script>alert(1)</script>"
HOSTILE_FILE = "digits<img src=x onerror=alert(2)>.npz"
SPACE = {"dropout": [0.0, 0.5], "l2": [0.0, 1e-3]}


def _run(directory, raw) -> str:
    path = directory / "campaign.toml"
    path.write_text(to_toml(raw))
    out = directory / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """An Optuna campaign whose name and data file name are HTML, run by the command line."""
    directory = tmp_path_factory.mktemp("hostile")
    digits = load_digits()
    data = directory / HOSTILE_FILE
    np.savez(data, x=digits.data.astype("float32") / 16, y=digits.target)
    raw = tiny_campaign(campaign={"name": HOSTILE}, data={"dataset": f"npz:{data}"}, space=SPACE)
    return _run(directory, raw)


@pytest.fixture(scope="module")
def keras_tuner(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kt")
    raw = tiny_campaign(campaign={"name": "kt", "engine": "keras-tuner"}, space=SPACE)
    return _run(directory, raw)


def _sections(page: str) -> list[str]:
    return re.findall(r"<h3 id=\"([a-z]+)-\d+\">", page)


def test_run_writes_the_report_with_every_section(keras_tuner):
    page = (keras_tuner / REPORT_FILE).read_text()
    assert _sections(page) == [
        "summary",
        "families",
        "plots",
        "configurations",
        "runs",
        "failed",
        "reproduce",
    ]
    assert "keras-tuner" in page and "Best configuration" in page
    assert "study run" in page  # the command that reproduces it


def test_report_is_self_contained(keras_tuner):
    page = (keras_tuner / REPORT_FILE).read_text()
    links = re.findall(r"(?:src|href)=\"([^\"]*)\"", page)
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links)
    assert "<link" not in page and "@import" not in page


def test_user_strings_are_escaped(hostile):
    page = (hostile / REPORT_FILE).read_text()
    assert HOSTILE not in page and HOSTILE_FILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "digits&lt;img src=x onerror=alert(2)&gt;.npz" in page


def test_report_command_rewrites_the_report(keras_tuner, capsys):
    (keras_tuner / REPORT_FILE).unlink()
    assert main(["report", str(keras_tuner)]) == 0
    assert capsys.readouterr().out.strip() == str(keras_tuner / REPORT_FILE)
    assert (keras_tuner / REPORT_FILE).exists()


def test_report_of_a_folder_without_a_campaign_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path) in error and "Traceback" not in error


def test_compare_writes_one_page_over_several_campaigns(keras_tuner, grid_folder, tmp_path):
    out = tmp_path / "both.html"
    assert main(["compare", str(keras_tuner), str(grid_folder), "--out", str(out)]) == 0
    page = out.read_text()
    assert 'id="overview"' in page and "all campaigns pooled" in page
    assert page.count('<section id="campaign-') == 2
    assert ">kt<" in page and ">tiny<" in page


def test_compare_needs_two_folders(keras_tuner, tmp_path, capsys):
    assert main(["compare", str(keras_tuner), "--out", str(tmp_path / "x.html")]) == 2
    assert "at least two" in capsys.readouterr().err


def test_written_atomically_to_a_new_folder(keras_tuner, tmp_path):
    path = write_report(keras_tuner, out=tmp_path / "deeper" / "r.html")
    assert path.exists() and not list(path.parent.glob("*.partial"))


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian's chromium; .ci/run installs it)"
)
def test_report_loads_in_a_browser_without_errors_and_every_image_decodes(hostile, tmp_path):
    seen = open_page(hostile / REPORT_FILE, tmp_path)
    assert seen.errors == [], seen.log[-2000:]
    assert len(seen.images) >= 5 and all(seen.images)
    assert seen.title.startswith(HOSTILE)  # the name reaches the reader as text, not as script


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian's chromium; .ci/run installs it)"
)
def test_browser_check_catches_a_broken_page(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<html><head><title>t</title></head><body>"
        '<img src="data:image/png;base64,AAAA"><script>undefinedFunction();</script></body></html>'
    )
    seen = open_page(broken, tmp_path)
    assert seen.images == [False]
    assert any("undefinedFunction" in e for e in seen.errors)
