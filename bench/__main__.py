"""Run the benchmarks: ``python -m bench [--quick] [--only NAME ...] [--repeat N] [--json FILE]``.

Prints one table of figures, each against its side-by-side baseline and target.  Quick
mode uses small sizes so CI can check that every benchmark still works; it says nothing
about speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import asdict

from bench import execution, gdb, hgcm, memory, scale, trace_memory
from bench.core import Row

#: name -> run(quick, repeat) -> rows.  Other benchmark modules register here.
BENCHMARKS: dict[str, Callable[[bool, int], list[Row]]] = {
    "execution": execution.run,
    "gdb": gdb.run,
    "hgcm": hgcm.run,
    "memory": memory.run,
    "scale": scale.run,
    "trace_memory": trace_memory.run,
}


def _format(rows: list[Row]) -> str:
    lines = ["| benchmark | figure | ours | baseline | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        baseline = f"{row.baseline:.4g} {row.unit} ({row.baseline_name})" if row.baseline is not None else ""
        ratio = f"{row.ratio:.2%}" if row.ratio is not None else ""
        met = "" if row.met is None else ("yes" if row.met else "no")
        lines.append(f"| {row.benchmark} | {row.metric} | {row.ours:.4g} {row.unit} | {baseline} | {ratio} | "
                     f"{row.target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check the benchmarks work")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure; the median is kept")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    rows: list[Row] = []
    for name in args.only or list(BENCHMARKS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(BENCHMARKS[name](args.quick, args.repeat))
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    print(f"machine: {machine}; mode: {'quick' if args.quick else 'full'}; medians of {args.repeat}")
    print(_format(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump([asdict(row) | {"ratio": row.ratio} for row in rows], stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
