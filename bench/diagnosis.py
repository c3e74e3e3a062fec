"""Known answers for the machine diagnosis: the confusion table of docs/vibration.md, reproducible.

    .venv/bin/python -m bench.diagnosis [--seeds 3]

Rows: the true fault and its severity (light: the pattern at 0.6 x the zone B/C boundary, moderate
1.4 x, severe 3 x; bearing impacts 0.03 / 0.15 / 0.5 g), columns: the diagnosis of one 1-s window at
3.2 kHz (a window can carry more than one; "none": nothing). Speeds 900, 1485, 1800, 2970 rpm;
the reference plant's noise (0.02 g). Bold: the expected answer.
"""

from __future__ import annotations

import argparse

from edge_agent.plugins.testing.vibration_faults import cases, confusion, markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    table, totals = confusion(list(cases(seeds=args.seeds)))
    print(markdown(table, totals))


if __name__ == "__main__":
    main()
