"""The report of a `study run`, made by a process forked before the run loads its Keras backend.

`study run` writes the report after training, in a process that has loaded the backend (which
cannot fork: `reports._fork`) and none of the report's modules. `report_ahead()`, called before
the backend loads, forks a child that imports them (pandas, Jinja2, matplotlib, scikit-learn:
seconds, on another core while the backend loads) and waits. The `write(directory)` it returns
has that child write the report, as `study report` would: its own children fit the importance
forest and encode figures on the other cores. Where the child cannot be forked or fails, `write`
writes the report in this process, where an error then shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from reports._fork import fork_ahead


def report_ahead() -> Callable[[str | Path], Path]:
    """Fork the report's process now; return `write(directory)`, which writes DIR/report.html
    (once in that process; again, here) and returns its path."""
    return functools.partial(fork_ahead(_import_the_reports_modules), _write_report)


def _import_the_reports_modules() -> None:
    import sklearn.ensemble  # noqa: F401 - the importance forest, fitted in this child's child
    import sklearn.inspection  # noqa: F401

    import reports.html  # noqa: F401 - pandas, Jinja2
    import reports.plots  # noqa: F401 - matplotlib


def _write_report(directory: str | Path) -> Path:
    from reports.html import write_report

    return write_report(directory)
