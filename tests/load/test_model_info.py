"""A cold check reads the model's description from its config, without TensorFlow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qcheck.load.model_file import info_from_config
from sample_models.catalog import SAMPLES


def test_config_gives_the_input_and_output_names() -> None:
    path = next(s.path for s in SAMPLES if s.name == "healthy")
    info = info_from_config(path, str(path), "x")
    assert info is not None
    assert info.inputs[0].shape == (None, 64, 64, 3)
    assert [t.name for t in info.outputs] == ["residual"]


def test_a_cold_check_without_analysis_never_imports_tensorflow_here(tmp_path: Path) -> None:
    path = next(s.path for s in SAMPLES if s.name == "healthy")
    script = (
        "import sys, qcheck\n"
        "if __name__ == '__main__':\n"
        f"    r = qcheck.check({str(path)!r}, targets=['tflite-int8', 'onnx-fp16'],\n"
        "                     analysis=False, cache=False)\n"
        "    assert r.target('onnx-fp16').metrics.delta_e_mean is not None\n"
        "    assert r.model.outputs[0].shape == (None, 64, 64, 3)\n"
        "    print('tensorflow' in sys.modules)\n"
    )
    (tmp_path / "probe.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
