"""The `study` command line: run, status, report, compare, export.

The edge of the program: argv and environment variables are read here and nowhere else. Bad input
(a campaign file, data, a flag) exits with status 2 and one message naming the key or file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

EXPORT_FORMATS = ("csv", "json", "parquet", "tensorboard")


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # so that a closed pipe shows here, not at exit
    except BrokenPipeError:
        # stdout was closed early (`study ... | head -1`): stop quietly, as Python's docs advise,
        # with the status of a process that SIGPIPE ended (128 + 13)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    args.whole_process = argv is None  # the `study` command itself, not a Python caller
    # Before Keras loads TensorFlow: its C++ code logs errors only (study.native_log holds back
    # the lines it writes before it reads this).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("\nstudy: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except _UserError as error:
        print(f"study: error: {error}", file=sys.stderr)
        return 2


class _UserError(Exception):
    """Bad input: reported in one message, exit status 2."""


def _import_backend() -> None:
    """Import Keras, and with it its backend, without the backend's start-up chatter; then
    freeze what the import made out of garbage collections: it lives as long as the process,
    and the first run's collection (study.trial.fresh_session) would scan it all (1.4 s after
    TensorFlow's import on a 2-core VM, to free 17 objects)."""
    import gc

    from study.native_log import native_chatter_held

    with native_chatter_held():
        import keras  # noqa: F401
    gc.freeze()


def _run(args: argparse.Namespace) -> int:
    from study import phases
    from study.config import ConfigError

    if os.environ.get("STUDY_PHASES"):  # benchmarks/phases.py: where the time goes
        phases.enable(os.environ["STUDY_PHASES"])
    campaign = _campaign_of(args)
    environments = _worker_environments(args, campaign)
    out = Path(args.out) if args.out else Path("runs") / campaign.name
    source = Path(args.campaign).read_text() if args.campaign else None
    command = shlex.join(
        ["study", "run", *([args.campaign] if args.campaign else []), "--out", str(out)]
        + (["--isolate", "--runs-per-worker", str(args.runs_per_worker)] if args.isolate else [])
        + _scale_out_flags(args)
    )
    print(
        f"study: {campaign.name}: {campaign.engine} {campaign.strategy}, "
        f"{_count(campaign.n_configurations())} configurations x {len(campaign.seeds)} seeds "
        f"-> {out}",
        file=sys.stderr,
    )
    from reports.ahead import report_ahead

    write_report = report_ahead()  # forked before the backend loads: a fork must precede it
    _import_backend()  # after the campaign file is validated: a typo is answered at once
    phases.mark("backend")
    from study.campaign import CampaignError, run_campaign
    from study.data import DataError
    from study.records import FolderError
    from study.store import StoreError
    from study.workers import WorkerError, run_workers

    phases.mark("imports")

    try:
        if environments is not None:
            chosen = run_workers(
                campaign,
                out,
                campaign_file=args.campaign,
                environments=environments,
                source_text=source,
                command=command,
                progress=not args.quiet,
            )
        else:
            chosen = run_campaign(
                campaign,
                out,
                source_text=source,
                command=command,
                progress=not args.quiet,
                isolate=args.runs_per_worker if args.isolate else 0,
            )
    except (ConfigError, DataError, CampaignError, WorkerError, StoreError, FolderError) as error:
        raise _UserError(error) from None
    _print_chosen(campaign.objective, chosen)
    report = _write_report(out, write_report)
    phases.mark("report")
    phases.write()
    print(
        f"results: {out}  (report: {report} | study status {out} | "
        f"study export {out} --format csv | study.records.load({str(out)!r}))"
    )
    if args.whole_process:
        _exit_without_teardown(0)
    return 0


def _exit_without_teardown(status: int) -> None:
    """End the process now, without the interpreter's teardown (finalizing TensorFlow's modules:
    0.4-0.8 s on a 2-core VM, seconds under load). Only once everything this process wrote is
    closed: `run_campaign` closed the record store, the engine's state and the executor, and
    the report is written; the standard streams and logging are flushed here."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _worker(args: argparse.Namespace) -> int:
    """Join a campaign: the trial loop on its shared state, no test evaluation."""
    from study.config import ConfigError
    from study.data import DataError
    from study.store import StoreError

    campaign = _campaign_of(args)
    if not args.launched and campaign.storage is None:
        raise _UserError(
            "--storage: a worker joins a campaign through a shared database; give its URL "
            "(postgresql://...), or use study run --workers N on one machine"
        )
    chief = _chief(campaign) if args.launched else None
    source = Path(args.campaign).read_text() if args.campaign else None
    command = shlex.join(
        ["study", "worker", *([args.campaign] if args.campaign else []), "--out", args.out]
    )
    _import_backend()  # after the campaign file is validated: a typo is answered at once
    from study.campaign import CampaignError, run_campaign
    from study.records import FolderError

    try:
        run_campaign(
            campaign,
            Path(args.out),
            source_text=source,
            command=command,
            progress=not args.quiet,
            record=not args.launched,  # the launching process recorded the session
            evaluate=False,  # study run evaluates the chosen configuration, once
            shared=True,  # other workers train this campaign too
            chief=chief,
        )
    except (ConfigError, DataError, CampaignError, StoreError, FolderError) as error:
        raise _UserError(error) from None
    print(f"worker done: {args.out}")
    return 0


def _chief(campaign):
    """For a KerasTuner worker that `study run` launched: the oracle it asks, from KerasTuner's
    chief/worker variables (study.workers sets them)."""
    from study.drivers import Chief

    if campaign.engine != "keras-tuner":
        return None
    names = ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise _UserError(f"{missing[0]}: a launched KerasTuner worker needs it set")
    host, port, tuner_id = (os.environ[name] for name in names)
    if not port.isdigit():
        raise _UserError(f"KERASTUNER_ORACLE_PORT: expected a port number, got {port!r}")
    return Chief(host=host, port=int(port), tuner_id=tuner_id)


def _campaign_of(args: argparse.Namespace):
    """The campaign file of `args` (the built-in default when none), --storage applied."""
    from study.config import ConfigError, load_campaign

    try:
        campaign = load_campaign(args.campaign)
    except ConfigError as error:
        raise _UserError(error) from None
    return _with_storage(campaign, args.storage)


def _with_storage(campaign, flag: str | None):
    """The campaign with --storage applied; a database that cannot be reached is an error
    naming the flag (or the key) that gave it."""
    from study.store import check_storage, is_remote
    from study.workers import with_storage

    url, where = (flag, "--storage") if flag else (campaign.storage, "campaign.storage")
    if url is None:
        return campaign
    if campaign.engine != "optuna":
        raise _UserError(f"{where}: only the optuna engine takes a storage URL")
    problem = check_storage(url)  # before anything is written
    if problem:
        verb = "cannot connect to" if is_remote(url) else "cannot use"
        raise _UserError(f"{where}: {verb} {_masked(url)}: {problem}")
    return with_storage(campaign, flag)


def _masked(url: str) -> str:
    """A database URL with its password hidden."""
    from study.store import masked_url

    return masked_url(url)


def _worker_environments(args: argparse.Namespace, campaign) -> list[dict[str, str]] | None:
    """One environment per worker process for --workers/--gpus, or None: run in-process."""
    from study.workers import worker_environments

    if args.gpus is not None and args.workers is not None:
        raise _UserError("--workers: give --workers N or --gpus LIST, not both")
    if args.trials_per_gpu is not None and args.gpus is None:
        raise _UserError("--trials-per-gpu: needs --gpus")
    if args.gpus is None and (args.workers or 1) == 1:
        return None
    if args.isolate:
        raise _UserError("--isolate: not with --workers or --gpus (each worker is a process)")
    return worker_environments(
        workers=args.workers or 1, gpus=args.gpus or (), trials_per_gpu=args.trials_per_gpu or 1
    )


def _scale_out_flags(args: argparse.Namespace) -> list[str]:
    flags = []
    if args.workers is not None:
        flags += ["--workers", str(args.workers)]
    if args.gpus is not None:
        flags += ["--gpus", ",".join(map(str, args.gpus))]
    if args.trials_per_gpu is not None:
        flags += ["--trials-per-gpu", str(args.trials_per_gpu)]
    if args.storage is not None:
        flags += ["--storage", _masked(args.storage)]
    return flags


def _write_report(directory: str | Path, write: Callable[[str | Path], Path] | None = None) -> Path:
    from reports import ReportError  # not reports.html: `study run`'s report is made elsewhere

    if write is None:
        from reports.html import write_report as write
    try:
        return write(directory)
    except ReportError as error:
        raise _UserError(error) from None


def _report(args: argparse.Namespace) -> int:
    print(_write_report(args.directory))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from reports.html import ReportError, write_comparison

    try:
        print(write_comparison(args.directories, out=args.out))
    except ReportError as error:
        raise _UserError(error) from None
    return 0


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)


def _print_chosen(objective: str, chosen: dict | None) -> None:
    if chosen is None:
        print("no configuration completed on every seed: nothing chosen")
        return
    values = ", ".join(f"{k}={v}" for k, v in chosen["values"].items())
    v = chosen["validation"]
    print(f"chosen: trial {chosen['trial']} ({values})")
    print(f"  validation {objective}: {_mean_sd(v['mean'], v['std'], len(chosen['test']))}")
    metrics = sorted({m for scores in chosen["test"].values() for m in scores})
    for metric in metrics:
        scores = [s[metric] for s in chosen["test"].values()]
        mean = sum(scores) / len(scores)
        print(
            f"  test {metric}: {mean:.4f} (held out, evaluated once per seed: "
            f"{', '.join(f'{s:.4f}' for s in scores)})"
        )


def _mean_sd(mean: float, sd: float, seeds: int) -> str:
    if seeds < 2:
        return f"{mean:.4f} (1 seed: no spread to show)"
    return f"{mean:.4f} ± {sd:.4f} (mean ± sd over {seeds} seeds)"


def _load_records(directory: str):
    """The folder's frozen campaign (campaign.json) and its two frames."""
    from study import records
    from study.store import StoreError

    try:
        return records.read_frozen_campaign(directory), records.load(directory)
    except (records.FolderError, StoreError) as error:
        raise _UserError(error) from None


def _verify(args: argparse.Namespace) -> int:
    from study.verify import VerifyError, default_tolerance, frozen_campaign, verify

    try:
        campaign = frozen_campaign(args.directory)
        tolerance = args.tolerance
        if tolerance is None:
            tolerance = default_tolerance(campaign, alone=args.alone)
        _import_backend()  # without its start-up chatter
        checks = verify(args.directory, n_runs=args.trials, alone=args.alone)
    except VerifyError as error:
        raise _UserError(error) from None
    for check in checks:
        how = f" (in its population of {check.population})" if check.population > 1 else ""
        where = f" ({check.column}, epoch {check.epoch})" if check.epoch else ""
        why = f": {check.failure}" if check.failure else ""
        verdict = "ok" if check.max_difference <= tolerance else "DIFFERS"
        print(
            f"trial {check.trial} seed {check.seed}{how}: largest difference "
            f"{check.max_difference:.3g}{where}{why}  {verdict}"
        )
    worst = max(check.max_difference for check in checks)
    print(
        f"{len(checks)} run(s) retrained; largest difference {worst:.3g}, tolerance {tolerance:g}: "
        f"{'reproduced' if worst <= tolerance else 'NOT reproduced'}"
    )
    return 0 if worst <= tolerance else 1


def _status(args: argparse.Namespace) -> int:
    import pandas as pd

    from study.records import rank_configurations
    from study.results import direction_of

    resolved, (trials, _) = _load_records(args.directory)
    c = resolved["campaign"]
    print(f"{c['name']}: {c['engine']} {c['strategy']}, seeds {c['seeds']}")
    counts = trials["status"].value_counts().sort_index() if len(trials) else {}
    runs = ", ".join(f"{n} {status}" for status, n in counts.items()) or "none yet"
    print(f"configurations: {trials['trial'].nunique() if len(trials) else 0}; runs: {runs}")
    ranking = rank_configurations(trials, c["objective"], direction_of(c["objective"]))
    if ranking.empty:
        print("best so far: none (no configuration has completed every seed)")
        return 0
    best = ranking.iloc[0]
    row = trials[trials["trial"] == best["trial"]].iloc[0]
    searched = ", ".join(
        f"{name}={row[f'param_{name}']}"
        for name in resolved["space"]
        if pd.notna(row[f"param_{name}"])  # an inactive conditional value is NaN
    )
    print(
        f"best so far: trial {int(best['trial'])} ({searched}): {c['objective']} "
        f"{_mean_sd(best['mean'], best['std'], int(best['seeds']))}"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    resolved, (trials, epochs) = _load_records(args.directory)
    if args.format == "tensorboard":
        from study.records import Records
        from study.tensorboard_export import ExportError, export_tensorboard

        try:
            print(export_tensorboard(args.directory, resolved, Records(trials, epochs)))
        except ExportError as error:
            raise _UserError(error) from None
        return 0
    written = []
    for name, frame in (("trials", trials), ("epochs", epochs)):
        path = Path(args.directory) / f"{name}.{args.format}"
        try:
            if args.format == "csv":
                frame.to_csv(path, index=False)
            elif args.format == "json":
                frame.to_json(path, orient="records", indent=1)
            else:
                frame.to_parquet(path, index=False)
        except OSError as error:  # a folder where the file goes, or a full disk
            raise _UserError(f"{path}: cannot write it ({error.strerror or error})") from None
        written.append(str(path))
    print("\n".join(written))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study", description="Hyperparameter search and regularization studies for Keras."
    )
    parser.add_argument("--version", action="version", version=f"study {_version()}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a campaign")
    run.add_argument("campaign", nargs="?", help="campaign TOML file (default: the built-in one)")
    run.add_argument("--out", help="campaign folder (default: runs/<campaign name>)")
    run.add_argument("--quiet", action="store_true", help="no progress (bar or lines)")
    run.add_argument(
        "--isolate",
        action="store_true",
        help="train in worker subprocesses, so this process's memory stays bounded",
    )
    run.add_argument(
        "--runs-per-worker",
        type=_positive_int,
        default=20,
        metavar="N",
        help="with --isolate: replace the worker after N runs (default 20)",
    )
    run.add_argument(
        "--workers", type=_positive_int, metavar="N", help="N worker processes share the campaign"
    )
    run.add_argument(
        "--gpus", type=_gpu_list, metavar="LIST", help="one worker per GPU, like 0,1,3"
    )
    run.add_argument(
        "--trials-per-gpu",
        type=_positive_int,
        metavar="K",
        help="with --gpus: K workers share each GPU (default 1)",
    )
    run.add_argument("--storage", metavar="URL", help="Optuna storage URL (campaign.storage)")
    run.set_defaults(handler=_run)

    worker = commands.add_parser(
        "worker", help="join a campaign through its shared database (from another machine)"
    )
    worker.add_argument("campaign", nargs="?", help="campaign TOML file (default: built-in)")
    worker.add_argument("--out", required=True, help="this machine's campaign folder")
    worker.add_argument("--storage", metavar="URL", help="the campaign's PostgreSQL URL")
    worker.add_argument("--quiet", action="store_true", help="no progress (bar or lines)")
    worker.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)
    worker.set_defaults(handler=_worker)

    verify = commands.add_parser(
        "verify", help="retrain finished runs; exit 1 when a curve differs beyond the tolerance"
    )
    verify.add_argument("directory")
    verify.add_argument(
        "--trials", type=_positive_int, default=3, metavar="K", help="runs to retrain (default 3)"
    )
    verify.add_argument(
        "--tolerance",
        type=_non_negative_float,
        metavar="T",
        help="largest absolute difference allowed (default 1e-6; 1e-2 if not deterministic, "
        "5e-2 with --alone)",
    )
    verify.add_argument(
        "--alone",
        action="store_true",
        help="retrain every run alone, even one that trained in a population (equal up to "
        "rounding only)",
    )
    verify.set_defaults(handler=_verify)

    status = commands.add_parser("status", help="progress and the best configuration so far")
    status.add_argument("directory")
    status.set_defaults(handler=_status)

    report = commands.add_parser("report", help="write DIR/report.html (a self-contained page)")
    report.add_argument("directory")
    report.set_defaults(handler=_report)

    compare = commands.add_parser("compare", help="one HTML report over several campaigns")
    compare.add_argument("directories", nargs="+", metavar="DIR")
    compare.add_argument("--out", required=True, help="the HTML file to write")
    compare.set_defaults(handler=_compare)

    export = commands.add_parser(
        "export", help="write DIR/trials.<ext> and DIR/epochs.<ext>, or DIR/tensorboard/"
    )
    export.add_argument("directory")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.set_defaults(handler=_export)
    return parser


def _version() -> str:
    """The installed package's version (package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regstudy")
    except PackageNotFoundError:
        return "(not installed)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _gpu_list(text: str) -> tuple[int, ...]:
    from study.workers import parse_gpus

    try:
        return parse_gpus(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


if __name__ == "__main__":
    sys.exit(main())
