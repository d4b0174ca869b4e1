"""Damaged campaign folders, file-system faults and unusable storage URLs: every command exits
with status 2 and one message naming the file (or the flag or key), prints no traceback, and
leaves every file as it was, byte for byte.

One finished tiny campaign is built once per test session (tests/conftest.py) and copied for
each case.

A read-only folder is made read-only for real: with chmod for a normal user, and, as root (whom
chmod does not stop), with a read-only bind mount of the folder onto itself, so the command gets
the EROFS a read-only disk gives. Root without the right to mount cannot be refused a write, so
those cases are skipped there, saying so.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from study.cli import main
from tests.conftest import tiny_campaign, to_toml

CAMPAIGN = tiny_campaign(campaign={"seeds": [0]}, train={"epochs": 1})


@pytest.fixture(scope="module")
def finished(finished_tiny) -> Path:
    """A folder holding c.toml and out/, the finished tiny campaign (1 seed, 1 epoch):
    tests/conftest.py's, which `work` copies for each case."""
    assert (finished_tiny / "c.toml").read_text() == to_toml(CAMPAIGN)
    return finished_tiny


@pytest.fixture
def work(finished, tmp_path) -> Path:
    """A copy of the finished campaign's folder, for one case to damage."""
    return Path(shutil.copytree(finished, tmp_path / "work"))


# ------------------------------------------------------------------------------ damages


def _replace(name: str, content: bytes | str) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        path = out / name
        path.unlink(missing_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)

    return damage


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        path = out / name
        path.write_bytes(path.read_bytes()[: max(path.stat().st_size // 3, 1)])

    return damage


def _directory(name: str) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        (out / name).unlink()
        (out / name).mkdir()

    return damage


def _remove(name: str) -> Callable[[Path], None]:
    return lambda out: (out / name).unlink()


def _drop_records_table(out: Path) -> None:
    with contextlib.closing(sqlite3.connect(out / "records.sqlite")) as conn:
        conn.execute("DROP TABLE runs")
        conn.commit()


GARBAGE = b"this is not what the file should hold\n" * 40
FILE_DAMAGES = {
    "records-garbage": (_replace("records.sqlite", GARBAGE), "records.sqlite"),
    "records-truncated": (_truncate("records.sqlite"), "records.sqlite"),
    "records-empty": (_replace("records.sqlite", b""), "records.sqlite"),
    "records-directory": (_directory("records.sqlite"), "records.sqlite"),
    "records-no-runs-table": (_drop_records_table, "records.sqlite"),
    "campaign-garbage": (_replace("campaign.json", GARBAGE), "campaign.json"),
    "campaign-truncated": (_truncate("campaign.json"), "campaign.json"),
    "campaign-empty": (_replace("campaign.json", ""), "campaign.json"),
    "campaign-directory": (_directory("campaign.json"), "campaign.json"),
    "campaign-a-list": (_replace("campaign.json", "[]"), "campaign.json"),
    "campaign-no-tables": (
        _replace("campaign.json", '{"campaign": {"name": "x"}}'),
        "campaign.json: damaged: no table 'data'",
    ),
    "campaign-seeds-a-string": (
        _replace(
            "campaign.json",
            '{"campaign": {"name": "x", "engine": "optuna", "strategy": "grid", "seeds": "0", '
            '"objective": "val_accuracy"}, "data": {}, "model": {}, "train": {}, "space": {}}',
        ),
        "campaign.json: damaged: campaign.seeds",
    ),
    "manifest-garbage": (_replace("manifest.json", GARBAGE), "manifest.json"),
    "manifest-truncated": (_truncate("manifest.json"), "manifest.json"),
    "manifest-empty": (_replace("manifest.json", ""), "manifest.json"),
    "manifest-directory": (_directory("manifest.json"), "manifest.json"),
    "manifest-a-list": (_replace("manifest.json", "[1, 2]"), "manifest.json"),
}
ENGINE_DAMAGES = {  # what only the commands that run the engine read
    "optuna-garbage": (_replace("optuna.sqlite", GARBAGE), "optuna.sqlite"),
    "optuna-truncated": (_truncate("optuna.sqlite"), "optuna.sqlite"),
    "optuna-directory": (_directory("optuna.sqlite"), "optuna.sqlite"),
    "records-missing": (_remove("records.sqlite"), "records.sqlite"),
    "records-empty-engine-ran": (_replace("records.sqlite", b""), "records.sqlite"),
}

# ------------------------------------------------------------------------------ commands


def _argv(command: str, work: Path, *, out: Path | None = None) -> list[str]:
    folder = str(work / "out")
    return {
        "run": ["run", str(work / "c.toml"), "--out", folder, "--quiet"],
        "worker": ["worker", str(work / "c.toml"), "--out", folder, "--quiet", "--launched"],
        "status": ["status", folder],
        "report": ["report", folder],
        "export": ["export", folder, "--format", "csv"],
        "compare": ["compare", folder, folder, "--out", str(out or work / "both.html")],
        "verify": ["verify", folder, "--trials", "1"],
    }[command]


READERS = ["status", "report", "export", "compare", "verify"]
WRITERS = ["run", "worker"]


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under `root`, with the sha256 of each file's bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


def _refused(argv: list[str], capsys, names: str, *, root: Path) -> str:
    """The command exits 2 with one message naming `names` (a regex), no traceback, and every
    file under `root` unchanged; returns the message."""
    before = _snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    assert err.count("study: error: ") == 1, err
    message = err[err.index("study: error: ") :].strip()
    assert "\n" not in message, err
    assert re.search(names, message), message
    assert _snapshot(root) == before
    return message


CASES = [
    *((c, d) for d in FILE_DAMAGES for c in READERS + WRITERS),
    *((c, d) for d in ENGINE_DAMAGES for c in WRITERS),
    ("run", "manifest-missing"),
]


@pytest.mark.parametrize("command, damage", CASES, ids=[f"{c}-{d}" for c, d in CASES])
def test_damaged_file_is_refused_naming_it(work, capsys, command, damage):
    if damage == "manifest-missing":
        make, name = _remove("manifest.json"), "manifest.json: missing, but records.sqlite"
    else:
        make, name = {**FILE_DAMAGES, **ENGINE_DAMAGES}[damage]
    make(work / "out")
    _refused(_argv(command, work), capsys, re.escape(name), root=work)


def test_missing_manifest_message_says_how_to_recover(work, capsys):
    (work / "out" / "manifest.json").unlink()
    assert main(_argv("run", work)) == 2
    assert "Restore the file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ read-only


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only for this process, for real (see the module's docstring)."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")] if p.is_dir()}
        for path in modes:
            path.chmod(stat.S_IMODE(modes[path]) & ~0o222)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(stat.S_IMODE(mode))
        return
    libc = ctypes.CDLL(None, use_errno=True)
    target = str(folder).encode()
    ms_rdonly, ms_remount, ms_bind = 1, 32, 4096
    if libc.mount(target, target, None, ms_bind, None) != 0:
        pytest.skip("root without the right to mount: no way to make a folder read-only to root")
    try:
        if libc.mount(None, target, None, ms_remount | ms_bind | ms_rdonly, None) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"remount read-only: {os.strerror(error)}")
        yield
    finally:
        libc.umount2(target, 0)


@pytest.mark.parametrize("command", READERS + WRITERS)
def test_read_only_folder_is_refused_naming_it(work, capsys, command):
    out = work / "out"
    with read_only(out):
        _refused(
            _argv(command, work, out=work / "both.html"),
            capsys,
            re.escape(str(out)) + r": cannot write in",
            root=work,
        )


# ------------------------------------------------------------------------------ --out


def _out_cases(work: Path) -> dict[str, tuple[list[str], str]]:
    a_file = work / "c.toml"
    return {
        "run-out-a-file": (["run", str(a_file), "--out", str(a_file)], "is a file"),
        "run-out-under-a-file": (
            ["run", str(a_file), "--out", str(a_file / "sub")],
            "is under a file",
        ),
        "worker-out-a-file": (
            ["worker", str(a_file), "--out", str(a_file), "--launched"],
            "is a file",
        ),
        "compare-out-a-folder": (
            _argv("compare", work, out=work / "out" / "weights"),
            "a folder, not a file",
        ),
        "compare-out-under-a-file": (
            _argv("compare", work, out=a_file / "both.html"),
            "cannot write it",
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["run-out-a-file", "run-out-under-a-file", "worker-out-a-file", "compare-out-a-folder"]
    + ["compare-out-under-a-file"],
)
def test_unusable_out_is_refused_naming_it(work, capsys, case):
    argv, what = _out_cases(work)[case]
    out = argv[argv.index("--out") + 1]
    _refused(argv, capsys, re.escape(out) + ".*" + what, root=work)


@pytest.mark.parametrize("command", ["run", "compare"])
def test_out_in_a_read_only_parent_is_refused(work, capsys, command):
    parent = work / "locked"
    parent.mkdir()
    out = parent / ("new" if command == "run" else "both.html")
    argv = (
        ["run", str(work / "c.toml"), "--out", str(out), "--quiet"]
        if command == "run"
        else _argv("compare", work, out=out)
    )
    with read_only(parent):
        _refused(argv, capsys, re.escape(str(out)) + r".*cannot write", root=work)


# ------------------------------------------------------------------------------ storage URLs

BAD_URLS = {
    "unknown-scheme": ("foo://x", r"'foo' is not supported"),
    "mysql": ("mysql://u@localhost/db", r"'mysql' is not supported"),
    "redis": ("redis://localhost:6379/0", r"'redis' is not supported"),
    "not-a-url": ("not a url", r"not a database URL"),
    "postgresql-unreachable": ("postgresql://u:p@127.0.0.1:1/db", r"cannot connect to"),
    "sqlite-outside-the-folder": ("sqlite:////tmp/elsewhere.sqlite", r"'sqlite' is not supported"),
    "sqlite-memory": ("sqlite://", r"'sqlite' is not supported"),
}


@pytest.mark.parametrize("url, what", BAD_URLS.values(), ids=list(BAD_URLS))
@pytest.mark.parametrize("command", ["run", "worker"])
def test_unusable_storage_flag_is_refused_before_anything_is_written(
    work, capsys, command, url, what
):
    out = work / "new"
    argv = [command, str(work / "c.toml"), "--out", str(out), "--quiet", "--storage", url]
    message = _refused(argv, capsys, r"^study: error: --storage: .*" + what, root=work)
    assert not out.exists()
    assert ":p@" not in message  # the password stays hidden


@pytest.mark.parametrize("url", ["foo://x", "sqlite:////tmp/elsewhere.sqlite"])
def test_unusable_campaign_storage_is_refused_naming_the_key(work, capsys, url):
    raw = tiny_campaign(campaign={"seeds": [0], "storage": url}, train={"epochs": 1})
    (work / "stored.toml").write_text(to_toml(raw))
    out = work / "new"
    argv = ["run", str(work / "stored.toml"), "--out", str(out), "--quiet"]
    _refused(argv, capsys, r"^study: error: campaign\.storage: ", root=work)
    assert not out.exists()


def test_storage_flag_on_a_finished_folder_changes_nothing(work, capsys):
    argv = _argv("run", work) + ["--storage", "foo://x"]
    _refused(argv, capsys, r"--storage", root=work)


def test_the_table_is_large_enough():
    assert len(CASES) >= 40
