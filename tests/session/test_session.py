"""One check's state: the jobs it hands the workers, keyed by what their results depend on."""

from __future__ import annotations

from pathlib import Path

import pytest

import converters
from qcheck.cache import Cache
from qcheck.jobs import Lane
from qcheck.session import Session
from qcheck.settings import ModelSettings


@pytest.fixture
def open_session(enhancer_path: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    opened: list[Session] = []

    def open_(settings: ModelSettings, name: str = "s") -> Session:
        workdir = tmp_path / name
        workdir.mkdir()
        session = Session.open(str(enhancer_path), None, None, settings, workdir,
                               Cache(tmp_path / "cache"))
        opened.append(session)
        return session
    yield open_
    for session in opened:
        session.close()


def test_jobs_split_work_between_the_lanes(open_session) -> None:  # type: ignore[no-untyped-def]
    session = open_session(ModelSettings())
    tflite = session.job(converters.TARGETS["tflite-int8"])
    onnx = session.job(converters.TARGETS["onnx-int8"])
    # TensorFlow converts TFLite, runs it (unless the runtime lane is idle first) and exports
    # the float ONNX; the runtime lane converts and runs the ONNX variants.
    assert tflite.lane == Lane.TENSORFLOW and tflite.spare_lane == Lane.RUNTIME
    assert tflite.base is not None and tflite.base.lane == Lane.TENSORFLOW
    assert not tflite.base.run and tflite.base.spare_lane is None
    assert onnx.lane == Lane.RUNTIME and onnx.spare_lane is None and onnx.base is not None
    assert onnx.base.target == "onnx-fp32" and onnx.base.lane == Lane.TENSORFLOW
    # Every ONNX target starts from the one float export.
    assert session.job(converters.TARGETS["onnx-fp16"]).base == onnx.base


def test_the_lanes_order_work_so_neither_ends_on_a_long_job(open_session) -> None:  # type: ignore[no-untyped-def]
    """The export and the reference unblock others. The TensorFlow lane then converts the
    quick TFLite variant and runs it before it converts the calibrated one; the runtime lane
    takes its calibrated conversion first, then the other. Each lane is walked as its
    scheduler walks it: the first job whose base (in the same lane) is done."""
    from qcheck.session import _urgency

    session = open_session(ModelSettings())
    jobs = {name: session.job(converters.TARGETS[name]) for name in
            ("tflite-fp16", "tflite-int8", "onnx-fp16", "onnx-int8")}
    queued = [*jobs.values(), *(job.base for job in jobs.values() if job.base is not None)]
    reference = session.references.job()
    assert reference is not None
    unique = {job.key: job for job in [*queued, reference]}
    order = sorted(unique.values(), key=_urgency)

    def lane(name: Lane) -> list[str]:
        waiting = [j for j in order if j.lane == name]
        done: set[str] = set()
        walked = []
        while waiting:
            job = next(j for j in waiting if j.base is None or j.base.key in done
                       or j.base.lane != name)
            waiting.remove(job)
            done.add(job.key)
            walked.append(f"{job.target}{'' if getattr(job, 'run', True) else ' (convert)'}")
        return walked

    assert lane(Lane.TENSORFLOW) == ["onnx-fp32 (convert)", "reference",
                                     "tflite-fp16 (convert)", "tflite-fp16",
                                     "tflite-int8 (convert)", "tflite-int8"]
    assert lane(Lane.RUNTIME) == ["onnx-int8", "onnx-fp16"]
    # The untimed runs on the reference kernels come after all of it, each in the lanes that
    # ran its artifact.
    kernels = [session.kernels_job(job) for job in jobs.values()]
    last = sorted([*kernels, *unique.values()], key=_urgency)[-len(kernels):]
    assert last == kernels
    assert all((k.lane, k.spare_lane) == (j.lane, j.spare_lane)
               for k, j in zip(kernels, jobs.values(), strict=True))


def test_job_keys_follow_what_the_result_depends_on(open_session) -> None:  # type: ignore[no-untyped-def]
    spec = converters.TARGETS["tflite-int8"]
    first = open_session(ModelSettings(), "a").job(spec)
    again = open_session(ModelSettings(), "b").job(spec)
    signed = open_session(ModelSettings.build("-1:1"), "c").job(spec)
    assert first.key == again.key  # a second check of the same model finds it in the cache
    assert signed.key != first.key and signed.signed_io != first.signed_io
    kept = open_session(ModelSettings(), "d").job(
        spec, options=converters.ConversionOptions(keep_float=("conv",)))
    assert kept.key != first.key


def test_the_session_reads_the_model_as_its_settings_say(open_session) -> None:  # type: ignore[no-untyped-def]
    session = open_session(ModelSettings.build("0:255", output_range="0:1"))
    assert str(session.input_range) == "0:255"
    assert session.info.input_hw == (32, 32)
    assert len(session.images.calibration) > 0 and len(session.images.evaluation) > 0
