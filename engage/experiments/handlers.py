"""Experiments' ledger job: refresh one experiment's outcome snapshot (what its results read)."""

from __future__ import annotations

from typing import Any

from engage.experiments.models import Experiment
from engage.experiments.services import experiment_outcomes_refresh
from engage.ledger.registry import job_handler

REFRESH_TASK = "experiment_outcomes_refresh"


@job_handler(REFRESH_TASK, priority=20)
def experiment_outcomes_refresh_job(job) -> dict[str, Any]:
    """Recompute the outcomes of every assignment of the experiment (idempotent: a snapshot)."""
    experiment = Experiment.objects.filter(pk=job.payload["experiment_id"]).first()
    if experiment is None:
        return {"status": "gone"}
    return {"assignments": experiment_outcomes_refresh(experiment=experiment)}
