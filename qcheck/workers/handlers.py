"""What a worker process does with one job: convert, write the artifact, run it, save outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from qcheck.memory import release_free_memory

__all__ = ["WorkerState"]


class WorkerState:
    """Per-worker memory: one ``ConversionSource`` per model, so each lane exports once."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self._sources: dict[str, Any] = {}
        self._trained: dict[tuple[str, str, str], Any] = {}  # QAT models, trained once

    def handle(self, job: Any) -> dict[str, Any]:
        import converters
        from qcheck.errors import QcheckError
        from qcheck.runners import runner_for
        from qcheck.types import Format

        started = time.perf_counter()
        if job.kind == "qat":
            return {**self._qat(job), "seconds": time.perf_counter() - started}
        if job.kind == "reference":
            from qcheck.errors import ModelLoadError

            try:
                return {**self._reference(job), "seconds": time.perf_counter() - started}
            except ModelLoadError as exc:
                return {"error": str(exc), "error_kind": "model",
                        "seconds": time.perf_counter() - started}
        spec = converters.TARGETS[job.target]
        try:
            final_base = spec.format is Format.TFLITE or (job.base is not None
                                                          and job.base.kind == "qat")
            existing = job.artifact or (job.base_artifact if final_base else None)
            if existing is not None:  # such a base is the converted artifact itself
                content = Path(existing).read_bytes()
                artifact = Path(existing)
            else:
                content = _inject_fault(job.target, self._convert(job, spec))
                artifact = self.workdir / f"{job.key}{spec.suffix}"
                artifact.write_bytes(content)
            reply: dict[str, Any] = {"artifact": str(artifact)}
            if job.run:
                target = self.workdir / f"{job.key}.npy"
                feed = self._feed(job.evaluation, job.input_range)
                with runner_for(spec.format, content) as runner:
                    runner.infer_to_file(feed, len(feed.images), target)
                reply["outputs"] = str(target)
        except QcheckError as exc:
            reply = {"error": str(exc)}
        reply["seconds"] = time.perf_counter() - started
        release_free_memory()
        return reply

    def _qat(self, job: Any) -> dict[str, Any]:
        """Train once per model and calibration set (every target of the fix shares it), then
        convert the trained model for ``job.target``."""
        import converters
        from qcheck.advise.qat import convert_trained, fine_tune
        from qcheck.errors import QcheckError
        from qcheck.load import load_model

        spec = converters.TARGETS[job.target]
        inputs = np.concatenate(list(self._feed(job.calibration, job.input_range)))
        trained_key = (job.model_path, job.calibration, job.input_range)
        try:
            if trained_key not in self._trained:
                self._trained[trained_key] = fine_tune(load_model(job.model_path).model,
                                                       inputs)[0]
            content = convert_trained(self._trained[trained_key], spec, inputs, job.signed_io)
        except QcheckError as exc:
            return {"error": f"{job.target}: {exc}"}
        except Exception as exc:  # tfmot and tf2onnx fail with assorted types
            return {"error": f"{job.target}: quantization-aware training failed: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else repr(exc)}"}
        target = self.workdir / f"{job.key}{spec.suffix}"
        target.write_bytes(content)
        return {"artifact": str(target)}

    def _reference(self, job: Any) -> dict[str, Any]:
        from qcheck.analyze.graph import record_stats, save_stats
        from qcheck.runners import KerasRunner

        source = self._source(job.model_path)
        model = source.model
        paths: dict[str, str] = {}
        # The converters' traced function: traced once for the reference and every export.
        with KerasRunner(model, source.function) as runner:
            for half, source in (("calibration", job.calibration),
                                 ("evaluation", job.evaluation)):
                target = self.workdir / f"{job.key}-{half}.npy"
                feed = self._feed(source, job.input_range)
                if half == "calibration" and job.options.get("stats"):
                    # One pass gives the reference and every layer's calibrated range.
                    outputs, input_stats, stats = record_stats(model, feed)
                    stats_path = self.workdir / f"{job.key}-stats.npz"
                    save_stats(stats_path, input_stats, stats)
                    paths["stats"] = str(stats_path)
                    np.save(target, outputs)
                else:
                    runner.infer_to_file(feed, len(feed.images), target)
                paths[half] = str(target)
        return {"artifact": paths["calibration"], "outputs": paths["evaluation"],
                "stats": paths.get("stats")}

    def _convert(self, job: Any, spec: Any) -> bytes:
        import converters

        if job.base_artifact is not None:
            source = converters.ConversionSource.from_onnx(Path(job.base_artifact).read_bytes())
        else:
            source = self._source(job.model_path)
        options = converters.ConversionOptions.from_dict(job.options)
        calibration = None
        if spec.precision.needs_calibration:
            feed = self._feed(job.calibration, job.input_range, extra=options.extra_calibration)
            calibration = feed.samples
        return converters.convert(spec, source, calibration, signed_io=job.signed_io,
                                  options=options)

    def _source(self, model_path: str) -> Any:
        if model_path not in self._sources:
            import converters
            from qcheck.load import load_model

            loaded = load_model(model_path)
            self._sources[model_path] = converters.ConversionSource(loaded.model,
                                                                    loaded.input_shape)
        return self._sources[model_path]

    def _feed(self, path: str, input_range: str, extra: bool = False) -> Any:
        from qcheck.load.images import ImageSet, ModelFeed
        from qcheck.types import InputRange

        pixels = np.load(path, mmap_mode="r")
        if extra:
            from qcheck.load.bundled import bundled_references

            pixels = np.concatenate([pixels, bundled_references(pixels.shape[1:3])])
        images = ImageSet(tuple(str(i) for i in range(len(pixels))), pixels, source=str(path))
        return ModelFeed(images, InputRange.parse(input_range))


def _inject_fault(target: str, content: bytes) -> bytes:
    """qcheck's own tests set ``QCHECK_FAULT_INJECTION=target:mode`` to prove isolation works.

    The modes are real failures of this process: ``segv`` (a null-pointer read), ``abort``,
    ``hang`` (until the step timeout) and ``corrupt`` (damaged artifact bytes for the runtime).
    """
    spec = os.environ.get("QCHECK_FAULT_INJECTION", "")
    victim, _, mode = spec.partition(":")
    if victim != target:
        return content
    if mode == "segv":
        import ctypes

        ctypes.string_at(0)
    elif mode == "abort":
        os.abort()
    elif mode == "hang":
        while True:
            time.sleep(1)
    elif mode == "corrupt":
        damaged = bytearray(content)
        for index in range(8, len(damaged), 7):
            damaged[index] ^= 0xA5
        return bytes(damaged)
    return content
