"""``python -m bench.plant``: the command line of the reference-plant benchmark."""

from __future__ import annotations

import argparse
import sys

import bench.plant
from bench.plant.measure import DEFAULT_CONFIG, measure


def main() -> int:
    """Parse the command line and run once; exit 0 when no seq number was lost and the agent stopped cleanly."""
    p = argparse.ArgumentParser(description=(bench.plant.__doc__ or "").split("\n")[0])
    p.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="agent run time from process start (default 60)",
    )
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="a soak run of this length (label 'soak<N>')",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="s after the first publish not measured (default 10, 60 for a soak)",
    )
    p.add_argument("--label", help="name of the CSV (default run<N>s / soak<N>)")
    p.add_argument("--compare", metavar="CSV", help="print differences against an older result")
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument(
        "--only",
        default="",
        help="comma-separated instances or plugins to run (cost by part)",
    )
    p.add_argument("--skip", default="", help="comma-separated instances or plugins to leave out")
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the agent with py-spy after warm-up",
    )
    p.add_argument(
        "--tasks",
        action="store_true",
        help="CPU by event-loop task/callback and lane job, timed inside the agent after warm-up",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the agent (experiments: OPENBLAS_NUM_THREADS=1, PYTHONPATH=a patched copy)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="INSTANCE.KEY=VALUE",
        help="change the config copy, e.g. pump1-de.driver.drain_interval_s=0.006 (a TOML value)",
    )
    p.add_argument("--no-csv", action="store_true", help="do not write a result file")
    p.add_argument("--out", metavar="CSV", help="where to write the result (default bench/results/<date>-<label>.csv)")
    args = p.parse_args()
    if args.soak:
        args.seconds = args.soak
    if args.warmup is None:
        args.warmup = 60.0 if args.soak else min(10.0, args.seconds / 4)
    if args.label is None:
        args.label = (
            f"soak{args.seconds:.0f}" if args.soak else f"run{args.seconds:.0f}s" + ("-profile" if args.profile else "")
        )
    return measure(args)[0]


if __name__ == "__main__":
    sys.exit(main())
