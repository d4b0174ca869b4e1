import json
import subprocess
import sys

import optuna
import pytest

from study import phases
from study.cli import main
from study.records import load
from tests.conftest import tiny_campaign, to_toml


@pytest.fixture
def fresh_phases(monkeypatch):
    """study.phases off, and restored after the test."""
    monkeypatch.setattr(phases, "_path", [])
    monkeypatch.setattr(phases, "_marks", [])


def test_marks_are_kept_only_when_enabled(fresh_phases, tmp_path):
    path = tmp_path / "phases.json"
    phases.mark("ignored")
    phases.write()
    assert not path.exists()
    phases.enable(path)
    phases.mark("a")
    phases.mark("b")
    phases.write()
    marks = json.loads(path.read_text())
    assert [name for name, _ in marks] == ["a", "b"]
    assert marks[0][1] <= marks[1][1]


@pytest.mark.slow
def test_study_run_marks_its_phases_in_order(fresh_phases, tmp_path, monkeypatch, capsys):
    campaign = tmp_path / "c.toml"
    campaign.write_text(to_toml(tiny_campaign(campaign={"seeds": [0]}, train={"epochs": 2})))
    path = tmp_path / "phases.json"
    monkeypatch.setenv("STUDY_PHASES", str(path))
    assert main(["run", str(campaign), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    marks = json.loads(path.read_text())
    names = [name for name, _ in marks]
    assert names == [
        "backend",
        "imports",
        "data",
        "setup",
        "epoch",  # the four runs train as one population: one mark per epoch
        "epoch",
        "trained",
        "evaluated",
        "report",
    ]
    times = [at for _, at in marks]
    assert times == sorted(times)
    assert "results:" in capsys.readouterr().out


@pytest.mark.slow
def test_study_run_skips_teardown_only_after_closing_everything(tmp_path):
    """The `study` command ends without the interpreter's teardown (study.cli): every record,
    the engine's state and the report are complete and closed by then."""
    campaign = tmp_path / "c.toml"
    campaign.write_text(to_toml(tiny_campaign(train={"epochs": 2})))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "study.cli", "run", str(campaign), "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-1].startswith("results:")  # flushed
    assert sorted(p.name for p in out.glob("*-wal")) == []  # SQLite files closed, checkpointed
    trials = load(out).trials
    assert len(trials) == 8 and set(trials["status"]) == {"COMPLETE"}
    assert trials["test_accuracy"].notna().sum() == 2  # the chosen configuration's two seeds
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'optuna.sqlite'}")
    assert [len(t.intermediate_values) for t in study.trials] == [2] * 4
    assert "chosen" in study.user_attrs
    assert (out / "report.html").read_text().rstrip().endswith("</html>")
