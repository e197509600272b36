"""An experiment's results at 1M exposures: `engage.experiments.selectors.experiment_results` (issue 22: < 1 s).

    DATABASE_URL=postgres://... .venv/bin/python bench/run_all.py experiments   # (or `make bench`)
    BENCH_EXPERIMENT_EXPOSURES=200000 ...                                       # scaled down

In one transaction, rolled back at the end: a company, a campaign and a running experiment with a
control and two variants (40/40/20), then EXPOSURES assignments written by one `INSERT ... SELECT
generate_series` (PostgreSQL; units spread over 14 days, outcomes 0/1 at 10%, 11% and 10%, a
pre-period count for CUPED, a few opt-outs), then `ANALYZE`. The figure is the wall time of the
results (one GROUP BY variant and day over the phase's assignments, then the statistics a day per
variant in Python: the timeline, CUPED, the sample-ratio check, the guardrail), the best and the
median of RUNS warm runs; the SQL alone is given beside it. The outcome refresh (the hourly job that
computes the snapshot the results read) is not part of the figure; see docs/experiments.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
NAME = "experiments"
EXPOSURES = int(os.environ.get("BENCH_EXPERIMENT_EXPOSURES", "1000000"))
RUNS = 5
CEILING_S = 1.0

FILL = """
INSERT INTO engage_experimentassignment (company_id, phase_id, variant_id, unit_id, bucket, exposed_at,
    outcome_value, pre_value, opted_out, safety_rejections)
SELECT %(company)s, %(phase)s,
    CASE WHEN g %% 10 < 4 THEN %(control)s WHEN g %% 10 < 8 THEN %(b)s ELSE %(c)s END,
    g, g %% 10000, %(start)s + ((g %% 14) || ' days')::interval + ((g %% 86400) || ' seconds')::interval,
    CASE WHEN random() < (CASE WHEN g %% 10 BETWEEN 4 AND 7 THEN 0.11 ELSE 0.10 END) THEN 1.0 ELSE 0.0 END,
    floor(random() * 3), random() < 0.003, 0
FROM generate_series(1, %(n)s) AS g
"""


class _Rollback(Exception):
    pass


def main() -> list[dict]:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from crm.tests.factories import CompanyFactory
    from engage.campaigns.models import Campaign
    from engage.experiments.models import Experiment, ExperimentDailySums, ExperimentVariant
    from engage.experiments.selectors import experiment_results, phase_daily_sums
    from engage.experiments.services import experiment_start

    if connection.vendor != "postgresql":
        raise SystemExit("bench/experiments.py fills with generate_series: PostgreSQL only")
    figures: list[dict] = []
    try:
        with transaction.atomic():
            company = CompanyFactory(name="Bench experiments", slug="bench-experiments")
            campaign = Campaign.objects.create(company=company, name="Bench reminders", channel="console")
            experiment = Experiment.objects.create(
                company=company, name="Bench wording", campaign=campaign, guardrails=["opt_out"]
            )
            control = ExperimentVariant.objects.create(experiment=experiment, name="A", kind="control", weight=40)
            variant_b = ExperimentVariant.objects.create(
                experiment=experiment, name="B", kind="send_setting", weight=40, settings={"send_window_start_hour": 9}
            )
            variant_c = ExperimentVariant.objects.create(
                experiment=experiment, name="C", kind="send_setting", weight=20, settings={"send_window_end_hour": 12}
            )
            experiment_start(experiment=experiment)
            experiment.refresh_from_db()
            phase = experiment.phases.get()
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(FILL, {
                    "company": company.pk, "phase": phase.pk, "control": control.pk, "b": variant_b.pk,
                    "c": variant_c.pk, "start": timezone.now() - timezone.timedelta(days=15), "n": EXPOSURES,
                })
                cursor.execute("ANALYZE engage_experimentassignment")
            fill_seconds = time.perf_counter() - started
            # The hourly job's rollup, as the refresh writes it (the outcomes themselves are the fill's here:
            # the bench has no bookings to compute them from).
            started = time.perf_counter()
            rows = phase_daily_sums(phase=phase)
            ExperimentDailySums.objects.bulk_create([ExperimentDailySums(phase=phase, **row) for row in rows])
            Experiment.objects.filter(pk=experiment.pk).update(outcomes_refreshed_at=timezone.now())
            experiment.refresh_from_db()
            rollup_seconds = time.perf_counter() - started
            experiment_results(experiment=experiment)  # warm
            timings, live_timings = [], []
            for _ in range(RUNS):
                started = time.perf_counter()
                results = experiment_results(experiment=experiment)
                timings.append(time.perf_counter() - started)
            # The same results straight from the assignments (no rollup yet: a new experiment's path).
            Experiment.objects.filter(pk=experiment.pk).update(outcomes_refreshed_at=None)
            experiment.refresh_from_db()
            for _ in range(RUNS):
                started = time.perf_counter()
                live = experiment_results(experiment=experiment)
                live_timings.append(time.perf_counter() - started)
            assert live["variants"] == results["variants"]
            units = sum(variant["units"] for variant in results["variants"])
            assert units == EXPOSURES, units
            assert not results["is_hidden"], results["srm"]
            figures.append({
                "figure": f"results of an experiment with {EXPOSURES:,} exposures (3 arms, 14 days), median of {RUNS}",
                "value": statistics.median(timings), "unit": "s", "ceiling": CEILING_S,
                "note": f"from the refresh's daily rollup; the rollup itself took {rollup_seconds:.2f} s in the job",
            })
            figures.append({
                "figure": f"the same results straight from the {EXPOSURES:,} assignments (no rollup), median of {RUNS}",
                "value": statistics.median(live_timings), "unit": "s", "ceiling": CEILING_S,
                "note": f"best {min(live_timings):.2f} s; one GROUP BY variant and day; filled in {fill_seconds:.0f} s",
            })
            raise _Rollback
    except _Rollback:
        pass
    return figures


if __name__ == "__main__":
    for figure in main():
        print(figure)
