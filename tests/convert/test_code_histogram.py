"""code_histogram (convert/onnx.py), the count behind every ONNX Runtime energy report: equal to numpy's bincount
for each stored form a graph returns codes in, and loud about a value outside the stated range."""

from __future__ import annotations

import numpy as np
import pytest

from spikedet.convert.onnx import code_histogram, histogram_counts
from spikedet.errors import SpikedetError


def reference(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.bincount(values.astype(np.int64).reshape(-1) - lo, minlength=hi - lo + 1)


@pytest.mark.parametrize(("dtype", "lo", "hi"), [
    (np.uint8, 0, 255), (np.uint8, 3, 40), (np.int8, -64, 64), (np.int8, -128, 127),
    (np.int16, 0, 1136), (np.int16, -6, 383), (np.int16, -32768, 32767),
    (np.float32, -6, 1130), (np.float32, -64, 25), (np.float32, -70000, -70000 + 2**15 - 1), (np.float32, -70000, 70000), (np.int32, -5, 70000),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_the_histogram_equals_numpys_bincount_in_every_stored_form(dtype, lo, hi):
    rng = np.random.default_rng(0)
    values = rng.integers(lo, hi + 1, size=(2, 3, 37, 41)).astype(dtype)
    values.reshape(-1)[:2] = (lo, hi)  # both ends are inside the range
    counts = code_histogram(values, lo, hi)
    assert counts.dtype == np.int64 and len(counts) == hi - lo + 1
    assert np.array_equal(counts, reference(values, lo, hi))


def test_a_range_wider_than_the_type_still_counts_exactly():
    values = np.array([0, 7, 7, 40], dtype=np.uint8)
    counts = code_histogram(values, -10, 40)
    assert np.array_equal(counts, reference(values, -10, 40)) and counts[10] == 1 and counts[17] == 2


def test_the_input_is_left_as_it_was():
    values = np.array([[-6, 0, 5], [7, -6, 383]], dtype=np.float32)
    kept = values.copy()
    code_histogram(values, -6, 383)
    code_histogram(kept.astype(np.int16), -6, 383)
    assert np.array_equal(values, kept)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.float32, np.int64])
def test_a_value_outside_the_range_is_an_error_not_dropped(dtype):
    values = np.array([0, 1, 2, 9], dtype=dtype)
    with pytest.raises(SpikedetError, match="outside their range"):
        code_histogram(values, 0, 5)


@pytest.mark.parametrize(("values", "lo", "hi"), [
    (np.array([3, 250], dtype=np.uint8), -10, 5),  # 250 would wrap to -6 if [lo, hi] left the type unchecked
    (np.array([0.0, 65539.0], dtype=np.float32), 0, 100),  # would wrap to 3 in int16
    (np.array([-7, 4], dtype=np.int16), -6, 300),  # below lo in the 16-bit path
    (np.array([-65, 3], dtype=np.int8), -64, 64),  # a byte the range does not pick
    (np.array([2.0, -1.0], dtype=np.float32), 0, 100),  # below the first bin
    (np.array([np.nan, 1.0, 2.0], dtype=np.float32), 0, 3),  # the range check skips it, the cast would make it 0
], ids=["uint8-range-beyond-the-type", "float32-beyond-int16", "int16-below-lo", "int8-below-lo", "float32-below-lo",
        "float32-nan"])
def test_values_that_a_narrow_view_would_wrap_are_errors(values, lo, hi):
    with pytest.raises(SpikedetError, match="outside their range"):
        code_histogram(values, lo, hi)


def test_train_counts_come_from_the_histogram_and_the_spike_table():
    codes = np.arange(4, 10)  # the code of each bin: stored value + offset
    histogram = np.array([1, 0, 2, 3, 0, 4])
    spikes_of_bin = np.array([0, 0, 0, 1, 1, 2])
    spikes, silent, code_sum = histogram_counts(histogram, codes, spikes_of_bin)
    assert spikes == 3 * 1 + 4 * 2
    assert silent == 1 + 0 + 2  # elements whose code sends no spike
    assert code_sum == 4 * 1 + 6 * 2 + 7 * 3 + 9 * 4
