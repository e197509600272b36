"""The experiment statistics checked by simulation (seeded, vectorised: 200+ experiments in one numpy pass)."""

import numpy as np

from engage.experiments.statistics import (
    Sums,
    compare,
    days_to_detect,
    is_sample_ratio_mismatch,
    minimum_detectable_effect,
    sample_ratio_p_value,
    sequential_multiplier,
)

EXPERIMENTS = 400


def _binary_sums(conversions: np.ndarray, units: np.ndarray) -> Sums:
    return Sums(n=units, total=conversions, total_squares=conversions)


def test_interval_covers_a_known_uplift_at_least_93_percent_of_the_time():
    # given 400 experiments of 8,000 units an arm, 10% bookings in control and 12% with the variant
    rng = np.random.default_rng(22)
    units = np.full(EXPERIMENTS, 8000)
    control = _binary_sums(rng.binomial(units, 0.10), units)
    variant = _binary_sums(rng.binomial(units, 0.12), units)
    # when
    result = compare(control, variant)
    # then
    covered = (result.uplift_low <= 0.02) & (0.02 <= result.uplift_high)
    assert covered.mean() >= 0.93
    # and the interval is narrow enough to be useful: most of these experiments find the effect
    assert result.is_significant.mean() > 0.5


def test_relative_uplift_interval_covers_the_truth():
    rng = np.random.default_rng(7)
    units = np.full(EXPERIMENTS, 6000)
    control = _binary_sums(rng.binomial(units, 0.20), units)
    variant = _binary_sums(rng.binomial(units, 0.23), units)
    result = compare(control, variant)
    covered = (result.relative_low <= 0.15) & (0.15 <= result.relative_high)
    assert covered.mean() >= 0.93


def test_a_a_tests_looked_at_daily_stay_at_or_under_5_percent_false_positives():
    # given 400 A/A experiments, 14 daily looks at the cumulative data, 300 units an arm a day
    rng = np.random.default_rng(2026)
    days, daily = 14, 300
    control_daily = rng.binomial(daily, 0.08, size=(days, EXPERIMENTS))
    variant_daily = rng.binomial(daily, 0.08, size=(days, EXPERIMENTS))
    false_positive = np.zeros(EXPERIMENTS, dtype=bool)
    # when each experiment is looked at every day
    for day in range(days):
        units = np.full(EXPERIMENTS, daily * (day + 1))
        control = _binary_sums(control_daily[: day + 1].sum(axis=0), units)
        variant = _binary_sums(variant_daily[: day + 1].sum(axis=0), units)
        false_positive |= compare(control, variant).is_significant
    # then
    assert false_positive.mean() <= 0.05


def test_a_fixed_horizon_interval_would_not_survive_daily_looks():
    """The same A/A data with the ordinary 1.96 standard errors: peeking inflates the false positives
    (this is what the sequential interval is for; it proves the simulation can fail)."""
    rng = np.random.default_rng(2026)
    days, daily = 14, 300
    control_daily = rng.binomial(daily, 0.08, size=(days, EXPERIMENTS))
    variant_daily = rng.binomial(daily, 0.08, size=(days, EXPERIMENTS))
    false_positive = np.zeros(EXPERIMENTS, dtype=bool)
    for day in range(days):
        units = np.full(EXPERIMENTS, daily * (day + 1))
        result = compare(
            _binary_sums(control_daily[: day + 1].sum(axis=0), units),
            _binary_sums(variant_daily[: day + 1].sum(axis=0), units),
        )
        false_positive |= np.abs(result.uplift) > 1.96 * result.standard_error
    assert false_positive.mean() > 0.08


def test_cuped_keeps_coverage_and_narrows_the_interval():
    # given 200 experiments whose metric is predicted by the unit's previous 30 days
    rng = np.random.default_rng(30)
    experiments, units = 200, 2000
    pre_control = rng.gamma(2.0, 1.0, size=(experiments, units))
    pre_variant = rng.gamma(2.0, 1.0, size=(experiments, units))
    y_control = 0.8 * pre_control + rng.normal(0, 1, size=(experiments, units))
    y_variant = 0.8 * pre_variant + 0.15 + rng.normal(0, 1, size=(experiments, units))

    def sums(y, x):
        return Sums(
            n=np.full(experiments, units), total=y.sum(1), total_squares=(y**2).sum(1), pre_total=x.sum(1),
            pre_squares=(x**2).sum(1), cross=(x * y).sum(1),
        )

    # when
    plain = compare(sums(y_control, pre_control), sums(y_variant, pre_variant))
    cuped = compare(sums(y_control, pre_control), sums(y_variant, pre_variant), use_cuped=True)
    # then
    covered = (cuped.uplift_low <= 0.15) & (0.15 <= cuped.uplift_high)
    assert covered.mean() >= 0.93
    assert np.median(cuped.standard_error / plain.standard_error) < 0.85


def test_a_skewed_split_trips_the_sample_ratio_check():
    # given a 50/50 experiment where 5% of the variant's exposures were lost (a broken redirect, say)
    rng = np.random.default_rng(3)
    control = int(rng.binomial(20000, 0.5))
    variant = int((20000 - control) * 0.95)
    # then
    assert is_sample_ratio_mismatch([control, variant], [50, 50])
    assert sample_ratio_p_value([control, variant], [50, 50]) < 0.001


def test_a_fair_split_passes_the_sample_ratio_check_nearly_always():
    rng = np.random.default_rng(4)
    trips = 0
    for _ in range(500):
        counts = rng.multinomial(10000, [0.45, 0.45, 0.10])
        trips += is_sample_ratio_mismatch(counts.tolist(), [45, 45, 10])
    assert trips <= 3  # expected 0.5 at p < 0.001


def test_sequential_interval_is_wider_than_fixed_horizon_and_shrinks_with_units():
    multipliers = sequential_multiplier(np.array([100, 1000, 10000, 100000]))
    assert (multipliers > 1.96).all()
    # the half width (multiplier / sqrt(N)) shrinks as units accumulate
    half_widths = multipliers / np.sqrt([100, 1000, 10000, 100000])
    assert (np.diff(half_widths) < 0).all()


def test_minimum_detectable_effect_and_days_to_reach_it():
    # 10% baseline, 2,000 units an arm
    mde = minimum_detectable_effect(baseline_mean=0.1, baseline_variance=0.09, units_per_arm=2000)
    assert 0.02 < mde < 0.05
    # more units, smaller effects
    assert minimum_detectable_effect(baseline_mean=0.1, baseline_variance=0.09, units_per_arm=20000) < mde / 2
    # 400 units a day split in two reach that MDE in 10 days
    assert days_to_detect(effect=mde, baseline_mean=0.1, baseline_variance=0.09, daily_units=400) == 10
    assert days_to_detect(effect=0.0001, baseline_mean=0.1, baseline_variance=0.09, daily_units=10) is None
