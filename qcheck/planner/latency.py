"""Latency of the plan's interesting points, measured like ``check``'s readiness: the same
profile job (median per image, 1 thread, this machine's CPU), on the points that could be
chosen (the size front and every passing point)."""

from __future__ import annotations

from dataclasses import replace

from qcheck.planner.front import Plan
from qcheck.results import TargetResult
from qcheck.session import Session

__all__ = ["with_latency"]


def with_latency(session: Session, result: TargetResult, plan: Plan) -> Plan:
    wanted = sorted(set(plan.front) | {i for i, p in enumerate(plan.points) if p.passed})
    profiles = {i: session.profile_job(session.job(result.spec,
                                                   options=plan.points[i].recipe.options()))
                for i in wanted if plan.points[i].ok}
    if not profiles:
        return plan
    made = session.run_jobs(list(profiles.values()))
    points = list(plan.points)
    for index, job in profiles.items():
        profile = made.get(job.key)
        median = None if profile is None else (
            profile.notes.get("latency_ms", {}).get("1", {}).get("median"))
        if median is not None:
            points[index] = replace(points[index], latency_ms=float(median))
    return plan.with_points(points)
