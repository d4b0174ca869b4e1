"""The HTML report: written by `study run`, `study report` and `study compare`; self-contained,
escaped, and checked in a real (headless) browser."""

from __future__ import annotations

import html
import json
import re
import shlex
import shutil

import numpy as np
import pytest
from sklearn.datasets import load_digits

from reports.html import REPORT_FILE, write_report
from study.cli import main
from study.config import load_campaign
from study.manifest import MANIFEST_FILE
from study.records import load
from tests.conftest import tiny_campaign, to_toml
from tests.reports.browser import CHROMIUM, open_page

HOSTILE_FOLDER = "out<img src=x onerror=alert(1)>"  # campaign names are checked: folders are not
HOSTILE_FILE = "digits<img src=x onerror=alert(2)>.npz"
SPACE = {"dropout": [0.0, 0.5], "l2": [0.0, 1e-3]}


def _run(directory, raw, *, out: str = "out") -> str:
    path = directory / "campaign.toml"
    path.write_text(to_toml(raw))
    out = directory / out
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """An Optuna campaign whose folder and data file names are HTML, run by the command line."""
    directory = tmp_path_factory.mktemp("hostile")
    digits = load_digits()
    data = directory / HOSTILE_FILE
    np.savez(data, x=digits.data.astype("float32") / 16, y=digits.target)
    raw = tiny_campaign(campaign={"name": "hostile"}, data={"dataset": f"npz:{data}"}, space=SPACE)
    return _run(directory, raw, out=HOSTILE_FOLDER)


@pytest.fixture(scope="module")
def keras_tuner(tmp_path_factory):
    directory = tmp_path_factory.mktemp("kt")
    raw = tiny_campaign(campaign={"name": "kt", "engine": "keras-tuner"}, space=SPACE)
    return _run(directory, raw)


def _sections(page: str) -> list[str]:
    return re.findall(r"<h3 id=\"([a-z]+)-\d+\">", page)


@pytest.fixture(scope="module")
def grid_page(grid_folder, tmp_path_factory):
    """The report of the Optuna grid that tests/reports/conftest.py trains for the reports' tests
    (the KerasTuner campaign's, written by `study run`: the slow tests)."""
    return write_report(grid_folder, out=tmp_path_factory.mktemp("grid") / REPORT_FILE).read_text()


def test_run_writes_the_report_with_every_section(grid_page):
    page = grid_page
    assert _sections(page) == [
        "summary",
        "families",
        "plots",
        "configurations",
        "runs",
        "failed",
        "reproduce",
    ]
    assert "optuna" in page and "Best configuration" in page
    assert "study run" in page  # the command that reproduces it


@pytest.mark.slow
def test_the_keras_tuner_report_names_its_engine(keras_tuner):
    page = (keras_tuner / REPORT_FILE).read_text()
    assert "keras-tuner" in page and "Best configuration" in page


def test_report_is_self_contained(grid_page):
    page = grid_page
    links = re.findall(r"(?:src|href)=\"([^\"]*)\"", page)
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links)
    assert "<link" not in page and "@import" not in page


@pytest.mark.slow
def test_user_strings_are_escaped(hostile):
    page = (hostile / REPORT_FILE).read_text()
    assert HOSTILE_FOLDER not in page and HOSTILE_FILE not in page
    assert "out&lt;img src=x onerror=alert(1)&gt;" in page
    assert "digits&lt;img src=x onerror=alert(2)&gt;.npz" in page


@pytest.mark.slow
def test_report_command_rewrites_the_report(keras_tuner, capsys):
    (keras_tuner / REPORT_FILE).unlink()
    assert main(["report", str(keras_tuner)]) == 0
    assert capsys.readouterr().out.strip() == str(keras_tuner / REPORT_FILE)
    assert (keras_tuner / REPORT_FILE).exists()


def test_report_of_a_folder_without_a_campaign_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path) in error and "Traceback" not in error


def test_the_cycle_collector_pauses_while_a_report_is_made_and_resumes(
    grid_folder, tmp_path, monkeypatch
):
    import gc

    from reports import html as report

    seen, analyse = [], report.analyse
    monkeypatch.setattr(report, "analyse", lambda r: seen.append(gc.isenabled()) or analyse(r))
    write_report(grid_folder, out=tmp_path / "r.html")
    assert seen == [False] and gc.isenabled()
    with pytest.raises(report.ReportError):
        write_report(tmp_path)  # not a campaign folder
    assert gc.isenabled()


@pytest.mark.slow
def test_compare_writes_one_page_over_several_campaigns(keras_tuner, grid_folder, tmp_path):
    out = tmp_path / "both.html"
    assert main(["compare", str(keras_tuner), str(grid_folder), "--out", str(out)]) == 0
    page = out.read_text()
    assert 'id="overview"' in page and "all campaigns pooled" in page
    assert page.count('<section id="campaign-') == 2
    assert ">kt<" in page and ">tiny<" in page


def test_compare_needs_two_folders(grid_folder, tmp_path, capsys):
    assert main(["compare", str(grid_folder), "--out", str(tmp_path / "x.html")]) == 2
    assert "at least two" in capsys.readouterr().err


@pytest.mark.slow
def test_written_atomically_to_a_new_folder(keras_tuner, tmp_path):
    path = write_report(keras_tuner, out=tmp_path / "deeper" / "r.html")
    assert path.exists() and not list(path.parent.glob("*.partial"))


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium (Debian's chromium; .ci/run installs it)"
)
def test_report_loads_in_a_browser_without_errors_and_every_image_decodes(hostile, tmp_path):
    seen = open_page(hostile / REPORT_FILE, tmp_path)
    assert seen.errors == [], seen.log[-2000:]
    assert len(seen.images) >= 5 and all(seen.images)
    assert seen.title == "hostile: campaign report"  # no alert ran: the errors would say


@pytest.mark.slow
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


# -- what a reader can rely on: tables that scroll, commands that run -----------------------


def _printed_commands(page: str) -> list[str]:
    """The commands the report prints for the reader to run, as the reader would copy them."""
    return [html.unescape(c) for c in re.findall(r'<pre class="command">(.*?)</pre>', page, re.S)]


@pytest.mark.slow
def test_every_table_scrolls_sideways_in_its_own_wrapper(keras_tuner, grid_folder, tmp_path):
    out = tmp_path / "both.html"
    assert main(["compare", str(keras_tuner), str(grid_folder), "--out", str(out)]) == 0
    for page in ((keras_tuner / REPORT_FILE).read_text(), out.read_text()):
        assert re.search(r"\.scroll \{[^}]*overflow-x: auto", page)
        tables = re.findall(r"(<div class=\"scroll\">)?<table", page)
        assert len(tables) >= 4 and all(tables), "a <table> outside a .scroll wrapper"
        assert re.search(r"\bcode \{[^}]*overflow-wrap: anywhere", page)  # long paths wrap


@pytest.mark.slow
def test_printed_commands_run_as_printed_from_another_folder(keras_tuner, tmp_path, monkeypatch):
    """A copy of the campaign in a folder whose name needs quoting; its report's commands run
    from some other folder, exactly as printed (the rerun and the verify train a few tiny runs)."""
    folder = tmp_path / "my campaigns" / "kt copy"
    shutil.copytree(keras_tuner, folder)
    page = write_report(folder).read_text()
    commands = _printed_commands(page)
    assert [shlex.split(c)[:2] for c in commands] == [["study", "run"], ["study", "verify"]]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    rerun = tmp_path / "my campaigns" / "kt copy-rerun"
    assert len(load(rerun).trials) == len(load(folder).trials)
    assert not list(elsewhere.iterdir())  # nothing landed in the folder the reader was in


@pytest.mark.slow
def test_the_recorded_command_is_history_not_a_command_to_copy(keras_tuner):
    page = (keras_tuner / REPORT_FILE).read_text()
    recorded = load_manifest(keras_tuner)["sessions"][0]["command"]
    assert recorded not in _printed_commands(page)
    assert "command (as run, from its own folder)" in page


@pytest.mark.slow
def test_a_default_campaign_folder_is_rerun_only_while_the_default_is_unchanged(
    keras_tuner, tmp_path
):
    folder = tmp_path / "default"
    shutil.copytree(keras_tuner, folder)
    (folder / "campaign.toml").unlink()  # as `study run` with no file leaves it
    page = write_report(folder).read_text()
    assert [shlex.split(c)[:2] for c in _printed_commands(page)] == [["study", "verify"]]
    assert "the built-in default campaign has changed since it ran" in page

    manifest = load_manifest(folder)
    manifest["campaign_fingerprint"] = load_campaign(None).fingerprint
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    commands = _printed_commands(write_report(folder).read_text())
    assert shlex.split(commands[0]) == ["study", "run", "--out", f"{folder}-rerun"]
    assert main(["status", str(folder)]) == 0  # the folder itself still reads


def load_manifest(folder):
    return json.loads((folder / MANIFEST_FILE).read_text())
