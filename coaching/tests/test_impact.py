"""Impact: the difference-in-differences and its 95% interval against a hand-computed example, and a run's rates
computed from its workers' bookings before and after."""

import datetime as dt

import pytest

from coaching.impact import diff_in_diff, overall_impact, run_impact_compute
from coaching.models import CoachingRecipient, CoachingRun
from coaching.punctuality import punctuality_backfill
from coaching.tests.helpers import booking_of, dhaka, worker_of

pytestmark = pytest.mark.embedded  # a headline flow: also on SQLite without Redis (make test)



def test_the_arithmetic_against_a_hand_computed_example():
    # coached changes 20, 10, 30: mean 20, sample variance ((0)²+(−10)²+(10)²)/2 = 100
    # holdout changes 0, 10: mean 5, sample variance ((−5)²+(5)²)/1 = 50
    # DiD = 20 − 5 = 15; SE = √(100/3 + 50/2) = √58.333 = 7.6376; 95% CI = 15 ± 1.96 × 7.6376 = [0.03, 29.97]
    result = diff_in_diff(treated=[20, 10, 30], control=[0, 10])
    assert result["estimate"] == 15
    assert result["standard_error"] == pytest.approx(7.638, abs=0.001)
    assert (result["ci_low"], result["ci_high"]) == (pytest.approx(0.03, abs=0.01), pytest.approx(29.97, abs=0.01))
    assert (result["coached_n"], result["holdout_n"]) == (3, 2)


def test_too_few_workers_give_no_interval():
    assert diff_in_diff(treated=[10], control=[0])["ci_low"] is None
    assert diff_in_diff(treated=[], control=[0, 5])["estimate"] is None


@pytest.mark.django_db
def test_a_runs_before_and_after_rates(company):
    as_of = dt.date(2026, 10, 31)
    coached, holdout = worker_of(company, name="A"), worker_of(company, name="B")
    # coached: before 1 of 2 on time (50%), after 2 of 2 (100%): +50
    booking_of(coached, dhaka(2026, 10, 20), late_minutes=30)
    booking_of(coached, dhaka(2026, 10, 21))
    booking_of(coached, dhaka(2026, 11, 5))
    booking_of(coached, dhaka(2026, 11, 6))
    # holdout: before 1 of 2 (50%), after 1 of 2 (50%): 0
    booking_of(holdout, dhaka(2026, 10, 20), late_minutes=30)
    booking_of(holdout, dhaka(2026, 10, 21))
    booking_of(holdout, dhaka(2026, 11, 5), late_minutes=30)
    booking_of(holdout, dhaka(2026, 11, 6))
    punctuality_backfill(company=company, as_of=dt.date(2026, 11, 30))
    run = CoachingRun.objects.create(company=company, as_of=as_of, status="completed", rules={})
    CoachingRecipient.objects.create(run=run, company=company, worker=coached, status="coached")
    CoachingRecipient.objects.create(run=run, company=company, worker=holdout, status="holdout")

    impact = run_impact_compute(run=run, today=dt.date(2026, 12, 6))

    assert (impact["coached_change"], impact["holdout_change"], impact["estimate"]) == (50, 0, 50)
    assert impact["days_after"] == 28 and impact["is_complete"]
    assert overall_impact(company=company)["estimate"] == 50
