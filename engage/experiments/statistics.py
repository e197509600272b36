"""The statistics of an experiment: pure functions over per-variant sufficient statistics (no database).

Every function takes sums, not rows (n, Σy, Σy², and for CUPED Σx, Σx², Σxy of the pre-period value x),
so the database aggregates (one GROUP BY) and these work on numpy arrays as well as on numbers: the
simulation tests run 200 experiments at once.

The interval is an always-valid 95% confidence sequence (Howard, Ramdas, McAuliffe, Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021, eq. (14); the asymptotic form of
Waudby-Smith et al. 2023 that GrowthBook and Eppo use for sequential tests). With the estimate's variance
V = s_t²/n_t + s_c²/n_c, N = n_t + n_c units and σ² = V·N, the half width at α is

    σ · sqrt( 2(Nρ² + 1) / (N²ρ²) · log( sqrt(Nρ² + 1) / α ) )

It holds at every N at once, so looking every day (or every hour) does not inflate the false positives,
at the price of a wider interval than the fixed-horizon z·sqrt(V). ρ tunes where it is tightest: we use
ρ² = (−2 log α + log(−2 log α + 1)) / N*, which makes it tightest at N* units (the tuning: the
experiment's planned sample, SEQUENTIAL_TUNING_UNITS by default, like GrowthBook's tuning parameter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.05
SRM_P_THRESHOLD = 0.001
SEQUENTIAL_TUNING_UNITS = 5000


@dataclass(frozen=True)
class Sums:
    """A variant's sufficient statistics: units, Σy, Σy² of the metric, and Σx, Σx², Σxy of the pre-period
    value (zeros when there is none). Fields may be numpy arrays (one value per simulated experiment)."""

    n: Any
    total: Any
    total_squares: Any
    pre_total: Any = 0.0
    pre_squares: Any = 0.0
    cross: Any = 0.0

    def __add__(self, other: Sums) -> Sums:
        return Sums(*(getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__))


@dataclass(frozen=True)
class Comparison:
    """A variant against control: means, absolute and relative uplift, each with its 95% always-valid interval."""

    control_mean: Any
    variant_mean: Any
    uplift: Any
    uplift_low: Any
    uplift_high: Any
    relative: Any
    relative_low: Any
    relative_high: Any
    standard_error: Any
    is_cuped: bool

    @property
    def is_significant(self) -> Any:
        return (self.uplift_low > 0) | (self.uplift_high < 0)


def _mean_variance(sums: Sums) -> tuple[Any, Any]:
    n = np.maximum(sums.n, 1)
    mean = sums.total / n
    variance = np.maximum(sums.total_squares / n - mean**2, 0.0) * n / np.maximum(n - 1, 1)
    return mean, variance


def tuning_rho_squared(*, tuning_units: float = SEQUENTIAL_TUNING_UNITS, alpha: float = ALPHA) -> float:
    """ρ² that makes the confidence sequence tightest at `tuning_units` (Howard et al. 2021, eq. (15))."""
    log_term = -2 * math.log(alpha)
    return (log_term + math.log(log_term + 1)) / tuning_units


def sequential_multiplier(n: Any, *, tuning_units: float = SEQUENTIAL_TUNING_UNITS, alpha: float = ALPHA) -> Any:
    """The confidence sequence's half width in standard errors at N units: half width = this · sqrt(V).

    Derived from the formula of the module docstring with σ = sqrt(V·N)."""
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    rho2 = tuning_rho_squared(tuning_units=tuning_units, alpha=alpha)
    return np.sqrt(n * 2 * (n * rho2 + 1) / (n**2 * rho2) * np.log(np.sqrt(n * rho2 + 1) / alpha))


def cuped_theta(control: Sums, variant: Sums) -> Any:
    """θ = cov(x, y) / var(x) over both arms pooled (0 where the pre-period has no variance)."""
    pooled = control + variant
    n = np.maximum(pooled.n, 1)
    covariance = pooled.cross / n - (pooled.total / n) * (pooled.pre_total / n)
    pre_variance = pooled.pre_squares / n - (pooled.pre_total / n) ** 2
    return np.where(pre_variance > 1e-12, covariance / np.where(pre_variance > 1e-12, pre_variance, 1.0), 0.0)


def _cuped_mean_variance(sums: Sums, *, theta: Any, pre_mean: Any) -> tuple[Any, Any]:
    """Mean and variance of y − θ(x − x̄): the same expected difference, less variance when x predicts y."""
    n = np.maximum(sums.n, 1)
    mean_y, var_y = _mean_variance(sums)
    mean_x = sums.pre_total / n
    var_x = np.maximum(sums.pre_squares / n - mean_x**2, 0.0) * n / np.maximum(n - 1, 1)
    cov_xy = (sums.cross / n - mean_x * mean_y) * n / np.maximum(n - 1, 1)
    adjusted_mean = mean_y - theta * (mean_x - pre_mean)
    adjusted_variance = np.maximum(var_y - 2 * theta * cov_xy + theta**2 * var_x, 0.0)
    return adjusted_mean, adjusted_variance


def compare(
    control: Sums, variant: Sums, *, use_cuped: bool = False, tuning_units: float = SEQUENTIAL_TUNING_UNITS,
    alpha: float = ALPHA,
) -> Comparison:
    """The variant's uplift over control with always-valid intervals; CUPED-adjusted when asked (pre-period sums set)."""
    if use_cuped:
        theta = cuped_theta(control, variant)
        pooled = control + variant
        pre_mean = pooled.pre_total / np.maximum(pooled.n, 1)
        control_mean, control_var = _cuped_mean_variance(control, theta=theta, pre_mean=pre_mean)
        variant_mean, variant_var = _cuped_mean_variance(variant, theta=theta, pre_mean=pre_mean)
    else:
        control_mean, control_var = _mean_variance(control)
        variant_mean, variant_var = _mean_variance(variant)
    n_control, n_variant = np.maximum(control.n, 1), np.maximum(variant.n, 1)
    uplift = variant_mean - control_mean
    variance = variant_var / n_variant + control_var / n_control
    standard_error = np.sqrt(variance)
    half = sequential_multiplier(control.n + variant.n, tuning_units=tuning_units, alpha=alpha) * standard_error
    # Relative uplift by the delta method: Var(t/c − 1) ≈ V_t/c² + t²V_c/c⁴.
    safe_control = np.where(np.abs(control_mean) > 1e-12, control_mean, np.nan)
    relative = uplift / safe_control
    relative_se = np.sqrt(
        variant_var / n_variant / safe_control**2 + variant_mean**2 * control_var / n_control / safe_control**4
    )
    relative_half = sequential_multiplier(control.n + variant.n, tuning_units=tuning_units, alpha=alpha) * relative_se
    return Comparison(
        control_mean=control_mean, variant_mean=variant_mean, uplift=uplift, uplift_low=uplift - half,
        uplift_high=uplift + half, relative=relative, relative_low=relative - relative_half,
        relative_high=relative + relative_half, standard_error=standard_error, is_cuped=use_cuped,
    )


def sample_ratio_p_value(counts: list[int], weights: list[float]) -> float:
    """Chi-square goodness of fit of the units per variant to the configured weights (1.0 when too few units)."""
    total = sum(counts)
    if total == 0 or len(counts) < 2:
        return 1.0
    weight_total = float(sum(weights))
    expected = [total * weight / weight_total for weight in weights]
    return float(scipy_stats.chisquare(counts, expected).pvalue)


def is_sample_ratio_mismatch(counts: list[int], weights: list[float]) -> bool:
    """True when the split is so unlike the weights (p < 0.001) that the results must not be trusted."""
    return sample_ratio_p_value(counts, weights) < SRM_P_THRESHOLD


def guardrail_breached(comparison: Comparison, *, higher_is_worse: bool) -> bool:
    """The variant made the guardrail worse, beyond doubt (its interval lies wholly on the bad side)."""
    return bool(comparison.uplift_low > 0) if higher_is_worse else bool(comparison.uplift_high < 0)


def minimum_detectable_effect(
    *, baseline_mean: float, baseline_variance: float, units_per_arm: float, power: float = 0.8,
    tuning_units: float = SEQUENTIAL_TUNING_UNITS, alpha: float = ALPHA,
) -> float:
    """The smallest absolute uplift the sequential test detects with `power` at `units_per_arm` (two equal arms).

    Detected means the interval excludes zero: the true effect must exceed the half width plus z_power
    standard errors. Equal variance in both arms is assumed (the baseline's)."""
    if units_per_arm <= 1:
        return math.inf
    standard_error = math.sqrt(2 * baseline_variance / units_per_arm)
    multiplier = float(sequential_multiplier(2 * units_per_arm, tuning_units=tuning_units, alpha=alpha))
    return (multiplier + float(scipy_stats.norm.ppf(power))) * standard_error


def days_to_detect(
    *, effect: float, baseline_mean: float, baseline_variance: float, daily_units: float, arm_share: float = 0.5,
    power: float = 0.8, tuning_units: float = SEQUENTIAL_TUNING_UNITS, max_days: int = 365,
) -> int | None:
    """Days of today's volume until `effect` is detectable (None: not within `max_days`, or no volume)."""
    if daily_units <= 0 or effect <= 0:
        return None
    for day in range(1, max_days + 1):
        units = daily_units * day * arm_share
        if minimum_detectable_effect(
            baseline_mean=baseline_mean, baseline_variance=baseline_variance, units_per_arm=units, power=power,
            tuning_units=tuning_units,
        ) <= effect:
            return day
    return None


def bernoulli_variance(rate: float) -> float:
    return rate * (1 - rate)
