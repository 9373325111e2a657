"""The benchmarks still work (quick sizes). Nothing here says anything about speed."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import BENCHMARKS, main


def test_every_benchmark_runs_in_quick_mode_and_reports_figures(tmp_path: Path, capsys) -> None:
    output = tmp_path / "rows.json"
    assert main(["--quick", "--repeat", "1", "--json", str(output)]) == 0
    rows = json.loads(output.read_text())
    benchmarks = {row["benchmark"].split(" ")[0] for row in rows}
    assert {"execution", "hgcm", "bulk", "scale", "trace_memory"} <= benchmarks
    assert set(BENCHMARKS) <= benchmarks | {"hgcm"}
    assert all(row["ours"] >= 0 for row in rows)
    assert all(row["baseline"] >= 0 for row in rows if row["baseline"] is not None)
    table = capsys.readouterr().out
    assert table.count("\n| ") == len(rows) + 1, "one table line per figure plus the header"
