"""Work beside the report's process (`reports._fork`) and the figures it encodes there: the same
result as computed in place, whatever happens to the child; and `reports` imports nothing heavy
until it draws."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from reports import _fork, html
from reports._fork import fork_ahead, in_fork
from reports.html import _png, _pngs

pytestmark = pytest.mark.slow  # each test forks


def _where(x: int, *, y: int = 0) -> tuple[int, int]:
    return x + y, os.getpid()


def _slow_in_a_child(parent: int) -> int:
    if os.getpid() != parent:
        time.sleep(30)
    return os.getpid()


def _fails(message: str) -> None:
    raise ValueError(message)


@pytest.fixture(autouse=True)
def _as_in_study_report(monkeypatch):
    """As in `study report`, which loads no Keras backend (another test may have loaded one in
    this process; `test_a_process_with_a_backend_loaded_does_not_fork` covers that case)."""
    monkeypatch.setattr(_fork, "_THREADED_BACKENDS", ())


def test_a_process_with_a_backend_loaded_does_not_fork(monkeypatch):
    monkeypatch.setattr(_fork, "_THREADED_BACKENDS", ("a_threaded_backend",))
    monkeypatch.setitem(sys.modules, "a_threaded_backend", object())
    assert in_fork(_where, 1)() == (1, os.getpid())


def test_the_result_comes_from_a_child():
    total, pid = in_fork(_where, 2, y=3)()
    assert total == 5 and pid != os.getpid()


def test_a_failing_child_gives_the_parents_error():
    result = in_fork(_fails, "no forest")
    with pytest.raises(ValueError, match="no forest"):
        result()


def test_a_child_that_does_not_answer_in_time_is_replaced_by_the_parent(monkeypatch):
    monkeypatch.setattr(_fork, "PATIENCE", 0.5)
    start = time.perf_counter()
    assert in_fork(_slow_in_a_child, os.getpid())() == os.getpid()
    assert time.perf_counter() - start < 10


def test_without_fork_the_parent_computes_it(monkeypatch):
    monkeypatch.setattr(_fork.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert in_fork(_where, 1)() == (1, os.getpid())


_prepared_in: list[int] = []


def _prepare() -> None:
    _prepared_in.append(os.getpid())


def _prepared_where() -> tuple[list[int], int]:
    return _prepared_in, os.getpid()


def test_work_forked_ahead_runs_in_the_child_that_prepared_it():
    call = fork_ahead(_prepare)
    prepared, pid = call(_prepared_where)
    assert prepared == [pid] and pid != os.getpid()
    assert call(_where, 1) == (1, os.getpid())  # once: a second call is computed here


def test_work_forked_ahead_that_fails_gives_the_parents_error():
    with pytest.raises(ValueError, match="no report"):
        fork_ahead(_prepare)(_fails, "no report")


def test_work_that_cannot_be_sent_to_the_child_is_done_here():
    def local(x: int) -> tuple[int, int]:
        return x, os.getpid()

    assert fork_ahead(_prepare)(local, 1) == (1, os.getpid())


def test_a_child_whose_preparation_fails_leaves_the_work_to_the_parent():
    assert fork_ahead(functools.partial(_fails, "no matplotlib"))(_where, 1) == (1, os.getpid())


def test_a_process_with_a_backend_loaded_does_not_fork_ahead(monkeypatch):
    monkeypatch.setattr(_fork, "_THREADED_BACKENDS", ("a_threaded_backend",))
    monkeypatch.setitem(sys.modules, "a_threaded_backend", object())
    assert fork_ahead(_prepare)(_prepared_where) == ([], os.getpid())


def test_a_child_forked_ahead_ends_with_its_parent(tmp_path):
    """A `study run` that fails, or is killed, before its report leaves no process behind."""
    code = (
        "import os, time\n"
        "from reports._fork import fork_ahead\n"
        f"fork_ahead(lambda: open({str(tmp_path / 'child')!r}, 'w').write(str(os.getpid())))\n"
        "time.sleep(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    child = int((tmp_path / "child").read_text())
    for _ in range(100):
        if not Path(f"/proc/{child}").exists() or "Z" in _state(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the child {child} outlived its parent by 10 s")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
    except OSError:  # it ended meanwhile
        return "Z"


def _figures() -> list[Figure]:
    figures = []
    for n in range(1, 4):
        figure = Figure(figsize=(2 + n, 2), dpi=100, layout="constrained")
        FigureCanvasAgg(figure)
        figure.subplots().plot(range(n + 1), label=f"line {n}")
        figure.legend(loc="outside right upper")
        figures.append(figure)
    return figures


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_figures_encoded_in_children_come_back_in_order_and_as_drawn_here(monkeypatch, cores):
    monkeypatch.setattr(html, "_cores", lambda: cores)
    pngs = _pngs(_figures())
    assert pngs == [_png(figure) for figure in _figures()]
    assert len(set(pngs)) == 3


def test_a_figure_is_drawn_as_savefig_tight_draws_it():
    png = _png(_figures()[0])
    buffer = BytesIO()
    _figures()[0].savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    assert png.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(BytesIO(png))), np.asarray(Image.open(buffer)))


def test_reports_import_nothing_heavy_until_they_draw():
    code = (
        "import sys, reports.html, reports.compare, reports.search, reports.summary\n"
        "heavy = ('matplotlib', 'scipy', 'sklearn', 'seaborn', 'PIL')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_report_is_written_without_scipy_or_sklearn_in_its_process(grid_folder, tmp_path):
    """Welch's p is computed without SciPy, and the importance forest (scikit-learn, which
    imports `scipy.stats`) in a child: neither loads here."""
    code = (
        "import sys\n"
        "from reports.html import write_report\n"
        f"write_report({str(grid_folder)!r}, out={str(tmp_path / 'r.html')!r})\n"
        "print([m for m in ('scipy', 'sklearn') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "r.html").stat().st_size > 0
