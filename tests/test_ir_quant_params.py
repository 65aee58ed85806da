import numpy as np
from elman.quantize.ir import QuantParams


def test_quantize_rounds_half_away_from_zero_exactly_and_saturates():
    q = QuantParams(1.0, 0)
    real = np.array([0.49999999999999994, 0.5, -0.5, -1.5, 2.5, -0.49999999999999994, np.inf,
                     300.0, -300.0, -np.inf])
    np.testing.assert_array_equal(q.quantize(real), [0, 1, -1, -2, 3, 0, 127, 127, -128, -128])


def test_quantize_adds_the_zero_point_before_saturating():
    q = QuantParams(0.5, -10)
    np.testing.assert_array_equal(q.quantize(np.array([0.25, -0.25, 100.0, -100.0])),
                                  [-9, -11, 127, -128])
