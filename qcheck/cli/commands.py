"""What each command does with its parsed flags: settings from the command line over
``[tool.qcheck]``, one library call, a verdict as an exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

from qcheck.cli.parser import LIMIT_FLAGS
from qcheck.config import FileConfig, load_config
from qcheck.errors import ExitCode
from qcheck.report.core import Report
from qcheck.report.progress import progress_reporter
from qcheck.settings import RunSwitches

__all__ = ["given_settings", "run_check", "run_convert", "run_explore", "run_fix", "run_plan",
           "run_targets", "run_zoo", "settings"]


def given_settings(args: argparse.Namespace) -> FileConfig:
    """What the command line set (``None`` where it set nothing), in the shape of
    ``[tool.qcheck]``: one object for every command, the config file and the zoo manifest."""
    targets = getattr(args, "targets", None)
    return FileConfig(
        targets=tuple(targets.split(",")) if targets is not None else None,
        calib=args.calib, eval=args.eval, input_range=args.input_range,
        output_range=args.output_range, output_kind=args.output_kind,
        custom_objects=args.custom_objects, input_size=args.input_size,
        feed=tuple(args.feed) if getattr(args, "feed", None) else None,
        objective=getattr(args, "objective", None),
        **{name: getattr(args, name) for name in LIMIT_FLAGS})


def settings(args: argparse.Namespace) -> FileConfig:
    """The command line's settings over ``[tool.qcheck]``'s."""
    return given_settings(args).over(load_config())


def run_targets(args: argparse.Namespace) -> int:
    from converters import DEFAULT_TARGETS, TARGETS

    width = max(len(name) for name in TARGETS)
    for name, spec in TARGETS.items():
        marker = "*" if name in DEFAULT_TARGETS else " "
        print(f"{name:<{width}} {marker} {spec.summary}")
    print("(* = default)")
    return ExitCode.OK


def run_check(args: argparse.Namespace) -> int:
    from converters import DEFAULT_TARGETS
    from qcheck.pipeline import check
    from qcheck.report.console import print_summary
    from qcheck.report.files import out_folder
    from qcheck.validate import resolve_targets

    chosen = settings(args)
    resolve_targets(chosen.targets or DEFAULT_TARGETS)  # a bad list: usage error before work
    with out_folder(args.out) as out, progress_reporter(quiet=args.quiet) as progress:
        report = check(
            args.model, targets=chosen.targets, settings=chosen.model_settings(),
            images=chosen.images(), thresholds=chosen.thresholds(), run=_switches(args),
            baseline=args.baseline, save_baseline=args.save_baseline,
            tolerances=chosen.tolerances(), progress=progress)
    report.write(out, explorer=args.explorer)
    if not args.quiet or not report.passed:
        print_summary(report)
        print(f"report: {out / 'report.json'}, {out / 'report.html'}, {out / 'junit.xml'}")
    return int(report.exit_code)


def _switches(args: argparse.Namespace) -> RunSwitches:
    return RunSwitches(analysis=not args.no_analysis, readiness=not args.no_readiness,
                       analyze_all=args.analyze_all or args.explorer,
                       fix_verification=not args.no_fix_verification, qat=args.qat,
                       cache=not args.no_cache)


def run_fix(args: argparse.Namespace) -> int:
    from qcheck.api import fix
    from qcheck.report.console import print_summary

    chosen = settings(args)
    with progress_reporter(quiet=args.quiet) as progress:
        report, shipped = fix(args.model, args.target, out=args.out, calib=chosen.calib,
                              eval=chosen.eval, settings=chosen.model_settings(),
                              thresholds=chosen.thresholds(), qat=args.qat,
                              cache=not args.no_cache, progress=progress)
    result = report.target(args.target)
    if not args.quiet or shipped is None:
        print_summary(report, stage=None if result.passed else "before the fix")
    if result.error:
        return ExitCode.CRASHED
    if shipped is None:
        print(f"no verified fix makes {args.target} pass; see {args.out}/report.json")
        return ExitCode.FAILED
    if not args.quiet:
        print(f"shipped {shipped}: {args.target} {_how_fixed(report, args.target)}; "
              f"what shipped and was measured: {Path(args.out) / 'shipped.json'}")
    return ExitCode.OK


def _how_fixed(report: Report, target: str) -> str:
    result = report.target(target)
    if result.passed:
        return "already passes"
    shipped = report.fixes[target].suggestion
    assert shipped.verified is not None
    text = f"fixed by {shipped.action.value} ({shipped.verified.headline})"
    cheaper = next((s for s in result.suggestions if s.best), None)
    if cheaper is not None and cheaper.action is not shipped.action:
        text += (f"; {cheaper.action.value} also passes if your hardware allows it, but it "
                 f"changes what {target} means")
    return text


def run_convert(args: argparse.Namespace) -> int:
    from qcheck.api import convert

    chosen = settings(args)
    path = convert(args.model, args.target, calib=chosen.calib, out=args.out,
                   settings=chosen.model_settings(), cache=not args.no_cache,
                   recipe=args.recipe)
    if not args.quiet:
        print(f"wrote {path}")
    return ExitCode.OK


def run_plan(args: argparse.Namespace) -> int:
    from qcheck.api import plan

    chosen = settings(args)
    with progress_reporter(quiet=args.quiet) as progress:
        outcome = plan(args.model, args.target, calib=chosen.calib, eval=chosen.eval,
                       settings=chosen.model_settings(), thresholds=chosen.thresholds(),
                       budget_seconds=args.budget_seconds,
                       objective=chosen.objective, out=args.out,
                       cache=not args.no_cache, progress=progress)
    result = outcome.report.target(args.target)
    if result.error or outcome.plan is None:
        print(f"{args.target}: {result.error or 'no layers to plan over'}")
        return ExitCode.CRASHED if result.error else ExitCode.FAILED
    print(f"{args.target}: {outcome.plan.summary}")
    print(f"plan: {args.out}/plan.html, {args.out}/recipe.json")
    return ExitCode.OK if outcome.passed else ExitCode.FAILED


def run_zoo(args: argparse.Namespace) -> int:
    from qcheck.zoo import zoo

    lines: list[str] = []
    say = lines.append if args.quiet else (lambda line: print(line, flush=True))
    result = zoo(args.catalogue, out=args.out, jobs=args.jobs, ray=args.ray,
                 cache=not args.no_cache, progress=say, overrides=given_settings(args))
    if not args.quiet or not result.passed:
        for outcome in result.models:
            state = "pass" if outcome.exit_code == 0 else f"exit {outcome.exit_code}"
            print(f"{outcome.model.name}: {state}{': ' + outcome.error if outcome.error else ''}")
        print(f"zoo: {args.out}/index.html, {args.out}/zoo.json, {args.out}/junit.xml "
              f"({result.seconds:.1f} s)")
    return int(result.exit_code)


def run_explore(args: argparse.Namespace) -> int:
    from qcheck.report.explore import explorer_command, open_explorer

    command = explorer_command(Path(args.report_dir), args.target)
    print(f"{command.target}: {command}")
    if not args.no_open and not open_explorer(command):
        print("Model Explorer is not installed: `pip install 'qcheck[explorer]'`, then run "
              "the command above")
    return int(ExitCode.OK)
