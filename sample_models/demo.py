"""``make demo``: check every sample model and print one summary table."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

import qcheck
from qcheck.results import TargetResult
from sample_models.catalog import DEMO_TARGETS, SAMPLES


def _cell(target: TargetResult) -> str:
    m = target.metrics
    verdict = "[green]pass[/]" if target.passed else "[bold red]FAIL[/]"
    seen = f" {','.join(a.value for a in target.artifacts_seen)}" if target.artifacts_seen else ""
    if m.delta_e_mean is None:  # a class map: the share of pixels keeping their class
        return f"agree {m.class_agreement or 0:.2%} {verdict}{seen}"
    bias = max(abs(v) for v in (m.channel_bias or {"r": 0.0}).values())
    return f"{m.delta_e_mean:.2f}/{m.delta_e_p95:.2f} {bias:.1f} {verdict}{seen}"


def main() -> int:
    console = Console(width=160)
    table = Table(title="qcheck on the sample models: ΔE mean / p95, max |channel bias| "
                  "(levels), verdict", title_justify="left")
    table.add_column("model")
    for target in DEMO_TARGETS:
        table.add_column(target, justify="right")
    out_root = Path("qcheck-report") / "demo"
    for sample in SAMPLES:
        console.print(f"checking {sample.name} …")
        report = qcheck.check(sample.path, targets=DEMO_TARGETS, input_range=sample.input_range)
        report.write(out_root / sample.name)
        table.add_row(sample.name, *(_cell(target) for target in report.targets))
    console.print(table)
    console.print(f"reports: {out_root}/<model>/report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
