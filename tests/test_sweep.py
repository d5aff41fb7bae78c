"""open_sweep's interpolation of trajectories onto a common time grid."""

import numpy as np

from linflow import sweep


def test_trajectories_are_interpolated_linearly_in_log_time():
    """An exponential decay sampled on a log grid: linear in log time means that between
    t = 1 and t = 100 the value at t = 10 is the average of the ends, not a value near t = 1's."""
    time = np.array([0.0, 1.0, 100.0])
    values = np.array([5.0, 2.0, 4.0])
    out = sweep.interpolate(time, values, np.array([0.0, 1.0, 10.0, 100.0]))
    np.testing.assert_allclose(out, [5.0, 2.0, 3.0, 4.0], rtol=1e-15)


def test_points_outside_the_recorded_span_are_nan_not_extended():
    time = np.array([0.0, 0.5, 2.0, 8.0])
    values = np.array([1.0, 0.9, 0.5, 0.1])
    grid = np.array([0.0, 0.1, 0.5, 4.0, 8.0, 9.0, 100.0])
    out = sweep.interpolate(time, values, grid)
    assert out[0] == 1.0  # t = 0 is exact
    assert np.isnan(out[1])  # before the first positive time
    np.testing.assert_allclose(out[[2, 4]], [0.9, 0.1])
    np.testing.assert_allclose(out[3], 0.5 + (0.1 - 0.5) * np.log(4 / 2) / np.log(8 / 2))
    assert np.isnan(out[5]) and np.isnan(out[6])  # after the run ended (converged or stopped)
    assert np.isnan(sweep.interpolate(np.array([0.5, 2.0]), np.array([1.0, 2.0]), np.array([0.0]))).all()
