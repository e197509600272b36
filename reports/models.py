"""Rollup tables and burnout alerts (see docs/architecture.md, "Reports")."""

from reports.rollups.models import (  # noqa: F401  (the rollups' tables belong to this app)
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    RollupWatermark,
    WorkerDaily,
)
