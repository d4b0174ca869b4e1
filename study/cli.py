"""The `study` command line: run, status, export.

The edge of the program: argv and environment variables are read here and nowhere else. Bad input
(a campaign file, data, a flag) exits with status 2 and one message naming the key or file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

EXPORT_FORMATS = ("csv", "json", "parquet")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before Keras loads TensorFlow
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


def _run(args: argparse.Namespace) -> int:
    from study.campaign import CampaignError, run_campaign
    from study.config import ConfigError, load_campaign
    from study.data import DataError

    try:
        campaign = load_campaign(args.campaign)
    except ConfigError as error:
        raise _UserError(error) from None
    out = Path(args.out) if args.out else Path("runs") / campaign.name
    source = Path(args.campaign).read_text() if args.campaign else None
    command = shlex.join(
        ["study", "run", *([args.campaign] if args.campaign else []), "--out", str(out)]
    )
    print(
        f"study: {campaign.name}: {campaign.engine} {campaign.strategy}, "
        f"{_count(campaign.n_configurations())} configurations x {len(campaign.seeds)} seeds "
        f"-> {out}",
        file=sys.stderr,
    )
    try:
        chosen = run_campaign(
            campaign, out, source_text=source, command=command, progress=not args.quiet
        )
    except (ConfigError, DataError, CampaignError) as error:
        raise _UserError(error) from None
    _print_chosen(campaign.objective, chosen)
    print(
        f"results: {out}  (study status {out} | study export {out} --format csv | "
        f"study.records.load({str(out)!r}))"
    )
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
    from study import records

    try:
        return records.load(directory)
    except FileNotFoundError as error:
        raise _UserError(error) from None


def _status(args: argparse.Namespace) -> int:
    import pandas as pd

    from study.records import rank_configurations
    from study.results import direction_of

    trials, _ = _load_records(args.directory)
    resolved = json.loads((Path(args.directory) / "campaign.json").read_text())
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
    trials, epochs = _load_records(args.directory)
    written = []
    for name, frame in (("trials", trials), ("epochs", epochs)):
        path = Path(args.directory) / f"{name}.{args.format}"
        if args.format == "csv":
            frame.to_csv(path, index=False)
        elif args.format == "json":
            frame.to_json(path, orient="records", indent=1)
        else:
            frame.to_parquet(path, index=False)
        written.append(str(path))
    print("\n".join(written))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study", description="Hyperparameter search and regularization studies for Keras."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run or resume a campaign")
    run.add_argument("campaign", nargs="?", help="campaign TOML file (default: the built-in one)")
    run.add_argument("--out", help="campaign folder (default: runs/<campaign name>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=_run)

    status = commands.add_parser("status", help="progress and the best configuration so far")
    status.add_argument("directory")
    status.set_defaults(handler=_status)

    export = commands.add_parser("export", help="write DIR/trials.<ext> and DIR/epochs.<ext>")
    export.add_argument("directory")
    export.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    export.set_defaults(handler=_export)
    return parser


if __name__ == "__main__":
    sys.exit(main())
