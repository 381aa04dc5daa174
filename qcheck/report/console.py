"""The one-screen summary printed after a check."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from qcheck.report.data import ReportData
from qcheck.results import Metrics, ranked_by_relief

__all__ = ["print_summary"]


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def _width() -> int:
    import shutil

    # Off a terminal rich assumes 80 columns; the table needs a little more to stay readable.
    return max(shutil.get_terminal_size((120, 24)).columns, 110)


def _bias(metrics: Metrics) -> str:
    bias = metrics.channel_bias
    return "/".join(f"{bias[c]:+.1f}" for c in "rgb") if bias else "–"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


# The three figures each kind of output is judged by (the first two gate it), with their
# headers: a class map shows its class agreement, not a signal-to-noise ratio.
_FIGURES: dict[str, tuple[tuple[str, str, str], Callable[[Metrics], tuple[str, str, str]]]] = {
    "colour": (("ΔE mean", "ΔE p95", "bias r/g/b"),
               lambda m: (_fmt(m.delta_e_mean), _fmt(m.delta_e_p95), _bias(m))),
    "lightness": (("ΔL* mean", "ΔL* p95", "PSNR dB"),
                  lambda m: (_fmt(m.delta_l_mean), _fmt(m.delta_l_p95), _fmt(m.psnr_db, ".1f"))),
    "class map": (("class agreement", "mIoU", "SQNR dB"),
                  lambda m: (_percent(m.class_agreement), _fmt(m.miou, ".3f"),
                             _fmt(m.sqnr_db, ".1f"))),
    "classifier": (("top-1 agreement", "SQNR dB", "max |error|"),
                   lambda m: (_percent(m.top1_agreement), _fmt(m.sqnr_db, ".1f"),
                              _fmt(m.max_abs_error, ".3g"))),
    "tensor": (("SQNR dB", "max |error|", "–"),
               lambda m: (_fmt(m.sqnr_db, ".1f"), _fmt(m.max_abs_error, ".3g"), "–")),
}


def _kind(report: ReportData) -> str:
    measured = [t.metrics for t in report.targets if not t.error] or [Metrics()]
    metrics = measured[0]
    if metrics.is_colour or all(m == Metrics() for m in measured):
        return "colour"
    if metrics.delta_l_mean is not None:
        return "lightness"
    if metrics.class_agreement is not None:
        return "class map"
    return "classifier" if metrics.top1_agreement is not None else "tensor"


def print_summary(report: ReportData, console: Console | None = None, *,
                  stage: str | None = None) -> None:
    """The verdict table, readiness, failures, attribution and findings; ``stage`` names what
    the verdicts are of when they are not the last word (``qcheck fix``: before the fix)."""
    console = console or Console(highlight=False, width=_width())
    title = f"qcheck · {report.model.path}" + (f" · {stage}" if stage else "")
    table = Table(title=title, title_justify="left")
    headers: tuple[str, ...]
    headers, figures = _FIGURES[_kind(report)]
    several = any(t.outputs for t in report.targets)
    if several:  # each output has its own kind and figures: in the outputs table below
        headers = ()
    for column in ("target", "verdict", *headers, "artifacts", "size", "s"):
        table.add_column(column, justify="left" if column in ("target", "artifacts") else "right",
                         no_wrap=column != "artifacts")
    for target in report.targets:
        if target.error:
            verdict = "[bold red]ERROR[/]"
        else:
            verdict = "[green]pass[/]" if target.passed else "[bold red]FAIL[/]"
        size = f"{target.size_bytes / 1024:.0f} KiB" if target.size_bytes else "–"
        table.add_row(target.name, verdict, *(figures(target.metrics) if not several else ()),
                      ", ".join(a.value for a in target.artifacts_seen) or "–",
                      size, f"{target.seconds:.1f}")
    console.print(table)
    if several:
        _print_outputs(report, console)
    _print_readiness(report, console)
    for target in report.targets:
        if target.error:
            said = target.error.removeprefix(f"{target.name}: ")  # named once, in red
            console.print(f"[red]{target.name}[/]: {said}")
        elif target.failures:
            console.print(f"[red]{target.name}[/]: " + "; ".join(target.failures))
        analysis = target.analysis or {}
        if analysis.get("output") and target.attribution:
            console.print(f"  {target.name}: attributed through output {analysis['output']}")
        on = analysis.get("target_on_attribution_images")
        for item in ranked_by_relief(target.attribution)[:3]:
            unit = item.unit
            figure = f"{unit} {item.drift:.3g}" if item.relief is None else (
                f"kept float {unit} {on:.3g}→{on - item.relief:.3g} on "
                f"{analysis.get('images')} images (simulated {item.drift:.3g})"
                if on is not None else
                f"kept float relieves {unit} {item.relief:.3g} (measured)")
            console.print(f"    {item.layer:<24} {item.cause.value:<21} {figure}")
    for finding in report.findings:
        console.print(f"[yellow]{finding.severity.value}[/] {finding.layer}: "
                      f"{finding.cause.value}: {finding.detail}")
    if report.baseline and report.baseline.regressions:
        for reg in report.baseline.regressions:
            console.print(f"[red]regressed[/] {reg.target} {reg.metric}: "
                          f"{reg.baseline:.4f} → {reg.now:.4f}")
    verdict = "[green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    if stage:
        verdict = f"{stage.upper()}: {verdict}"
    console.print(f"{verdict}  ({report.images.evaluation} evaluation images, "
                  f"{report.images.calibration} calibration, source: {report.images.source})")


def _output_kind(metrics: Metrics, kind: str) -> str:
    if kind == "image":
        return "colour" if metrics.is_colour else "lightness"
    if kind == "classes":
        return "class map" if metrics.class_agreement is not None else "classifier"
    return "tensor"


def _print_outputs(report: ReportData, console: Console) -> None:
    """Each output of each target, judged by its own kind's figures."""
    table = Table(title="outputs", title_justify="left")
    for column in ("target", "output", "kind", "verdict", "figures"):
        table.add_column(column, justify="left", no_wrap=column != "figures")
    for target in report.targets:
        for output in target.outputs:
            headers, figures = _FIGURES[_output_kind(output.metrics, output.spec.kind.value)]
            shown = "  ".join(f"{h} {v}" for h, v in zip(headers, figures(output.metrics),
                                                          strict=True) if h != "–")
            table.add_row(target.name, output.name, output.spec.kind.value,
                          "[green]pass[/]" if output.passed else "[bold red]FAIL[/]", shown)
    console.print(table)


def _print_readiness(report: ReportData, console: Console) -> None:
    """Kernels, latency, memory, coverage and I/O per target (CPU figures of this machine)."""
    measured = [t for t in report.targets if t.readiness and "kernels" in t.readiness]
    if not measured:
        return
    table = Table(title="readiness (this machine's CPU)", title_justify="left")
    # drift q/k: quantization (reference kernels) / kernels (reference → default kernels)
    for column in ("target", "colour", "drift q/k", "k share", "ms 1t/2t", "mem", "float",
                   "GPU", "I/O"):
        table.add_column(column, justify="left" if column in ("target", "I/O") else "right",
                         no_wrap=True)
    for target in measured:
        ready = target.readiness or {}
        kernels, latency, coverage = ready["kernels"], ready["latency_ms"], ready["coverage"]
        colour_failed = len(target.failures) > len(ready.get("gate_failures", []))
        io = ready["io"]
        table.add_row(
            target.name, "[bold red]FAIL[/]" if colour_failed else "[green]pass[/]",
            f"{_fmt(kernels.get('quantization'), '.3g')}/{_fmt(kernels.get('kernels'), '.3g')}",
            _fmt(kernels.get("kernel_share"), ".0%"),
            "/".join(_fmt(latency.get(t, {}).get("median"), ".1f") for t in ("1", "2")),
            f"{ready['memory_mb']:.0f} MB", str(coverage["float_ops"]),
            "–" if coverage["gpu_incompatible_ops"] is None
            else str(coverage["gpu_incompatible_ops"]),
            f"{_dtypes(io['inputs'])} → {_dtypes(io['outputs'])}")
    console.print(table)
    for target in measured:
        for issue in (target.readiness or {}).get("findings", []):
            if issue["kind"] == "runtime":
                parts = (f"node {issue['node']}" if issue["node"] is not None else "",
                         issue["op"] or "", f"(layer {issue['layer']})" if issue["layer"] else "")
                where = " ".join(p for p in parts if p)
                console.print(f"[yellow]runtime[/] {target.name} {where}: {issue['detail']}")


def _dtypes(tensors: list[dict[str, object]]) -> str:
    return ",".join(str(t["dtype"]) for t in tensors)
