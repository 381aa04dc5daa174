"""The one place qcheck quantizes: each function against its definition, numpy and TensorFlow
rounding alike."""

from __future__ import annotations

import numpy as np
import pytest

from qcheck import numerics
from qcheck.numerics import ActivationKind


def test_quantize_rounds_to_codes_and_saturates() -> None:
    values = np.array([-1.0, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 2.0], np.float32)
    codes = numerics.quantize(values, 1 / 255, 0, np.dtype(np.uint8))
    # np.round rounds half to even, as the runtimes' own quantize does (0.5 → 0, 1.5 → 2).
    assert codes.dtype == np.uint8 and codes.tolist() == [0, 0, 0, 2, 255, 255]
    signed = numerics.quantize(np.array([-1.5, 0.0, 1.5], np.float32), 2 / 255, -1,
                               np.dtype(np.int8))
    assert signed.tolist() == [-128, -1, 127]


def test_dequantize_inverts_quantize_within_half_a_step() -> None:
    values = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    scale, zero = 2 / 255, 3
    back = numerics.dequantize(numerics.quantize(values, scale, zero, np.dtype(np.int8)),
                               scale, zero)
    inside = (values >= (-128 - zero) * scale) & (values <= (127 - zero) * scale)
    assert back.dtype == np.float32
    assert np.abs(back - values)[inside].max() <= scale / 2 + 1e-7


@pytest.mark.parametrize(("low", "high", "expected"), [
    (0.0, 1.0, (1 / 255, 0.0)),
    (0.2, 1.0, (1 / 255, 0.0)),  # the range is widened to include zero
    (-1.0, 1.0, (2 / 255, 128.0)),
    (-2.0, -1.0, (2 / 255, 255.0)),
])
def test_uint8_parameters_cover_the_range_and_zero(low: float, high: float,
                                                   expected: tuple[float, float]) -> None:
    scale, zero = numerics.affine_parameters(low, high, ActivationKind.UINT8)
    assert scale == pytest.approx(expected[0]) and zero == expected[1]
    assert float(zero).is_integer()


def test_int16_is_symmetric_and_fp16_has_no_grid() -> None:
    assert numerics.affine_parameters(-0.5, 2.0, ActivationKind.INT16) == (2.0 / 32767, 0.0)
    values = np.array([1.0001, 70000.0], np.float32)
    stored = numerics.fake_quantize(values, 0, 1, ActivationKind.FP16)
    assert stored[0] == np.float32(np.float16(1.0001)) and np.isinf(stored[1])


def test_fake_quantize_rounds_alike_in_numpy_and_tensorflow() -> None:
    import tensorflow as tf

    values = np.random.default_rng(1).uniform(-1.2, 1.3, 4096).astype(np.float32)
    scale, zero = numerics.affine_parameters(-1.0, 1.0, ActivationKind.UINT8)
    in_numpy = numerics.fake_quantize_affine(values, scale, zero, ActivationKind.UINT8)
    in_tensorflow = numerics.fake_quantize_affine(
        tf.constant(values), tf.constant(scale, tf.float32), tf.constant(zero, tf.float32),
        ActivationKind.UINT8, numerics.tensorflow_ops()).numpy()
    np.testing.assert_array_equal(in_numpy, in_tensorflow)
    assert len(np.unique(in_numpy)) <= 256  # on the 8-bit grid, clipped to the range


def test_per_channel_rounding_keeps_a_small_channel_per_tensor_crushes() -> None:
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[..., 0] = [1.0, -0.5, 0.25]
    kernel[..., 1] = [0.003, -0.002, 0.001]  # a channel 300× smaller than the other
    per_channel = numerics.round_weights(kernel, (3,), per_channel=True)
    per_tensor = numerics.round_weights(kernel, (3,), per_channel=False)
    error = np.abs(per_channel - kernel).max(axis=(0, 1, 2))
    assert error[0] <= 1.0 / 127 / 2 + 1e-7 and error[1] <= 0.003 / 127 / 2 + 1e-9
    assert np.all(per_tensor[..., 1] == 0)  # below half a per-tensor step: rounded away


def test_float16_clamps_magnitudes_as_the_converter_does() -> None:
    values = np.array([1e-9, -1e-9, 0.0, 1e6], np.float32)
    stored = numerics.to_float16(values, clamp=(6e-5, 65504.0))
    assert stored.tolist() == [np.float32(np.float16(6e-5)), -np.float32(np.float16(6e-5)),
                               0.0, 65504.0]
