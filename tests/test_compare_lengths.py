"""compare_outputs on sequences of unequal length: real steps only, every pair."""

import numpy as np
import pytest
from elman.runtime.compare import compare_outputs
from elman.runtime.outputs import StepOutputs


def _outputs(seed=0):
    rng = np.random.default_rng(seed)
    return StepOutputs(h=rng.integers(-128, 128, (3, 6, 4), dtype=np.int8),
                       y=rng.integers(-128, 128, (3, 6, 2), dtype=np.int8))


def test_padding_after_a_sequence_is_neither_compared_nor_counted():
    a = _outputs()
    b = StepOutputs(h=a.h.copy(), y=a.y.copy())
    lengths = np.array([6, 2, 4])
    b.h[1, 2:] += 1  # padding of sequence 1 (wraps, still differs)
    b.y[2, 4:] += 1  # padding of sequence 2
    result = compare_outputs("a", "b", a, b, lengths)
    assert result.ok and result.mismatches == 0
    assert result.compared_hidden == 12 * 4 and result.compared == 12 * (4 + 2)
    # without the lengths the same outputs differ: every step was compared
    everything = compare_outputs("a", "b", a, b)
    assert not everything.ok and everything.compared == 3 * 6 * (4 + 2)


def test_a_difference_on_a_real_step_is_found_at_its_place():
    a = _outputs()
    b = StepOutputs(h=a.h.copy(), y=a.y.copy())
    lengths = np.array([6, 2, 4])
    b.h[1, 2:] += 1  # padding
    b.y[1, 1, 0] += 1  # sequence 1's last real step
    result = compare_outputs("a", "b", a, b, lengths)
    assert (result.mismatches, result.mismatches_hidden) == (1, 0)
    first = result.first_mismatch
    assert (first.sequence, first.step, first.kind, first.unit) == (1, 1, "y", 0)


@pytest.mark.parametrize("lengths", [[6, 2], [7, 2, 4], [-1, 2, 4]])
def test_lengths_must_fit_the_outputs(lengths):
    a = _outputs()
    with pytest.raises(ValueError, match="lengths"):
        compare_outputs("a", "b", a, a, np.array(lengths))
