"""Rollup tables and burnout alerts (see docs/architecture.md, "Reports")."""

from reports.burnout.models import BurnoutAlert, BurnoutSettings  # noqa: F401  (burnout alerts' tables)
from reports.rollups.models import (  # noqa: F401  (the rollups' tables belong to this app)
    AIDaily,
    EngagementDaily,
    LeadDaily,
    LeadStageCount,
    LeadStageTimeDaily,
    RollupWatermark,
    WorkerDaily,
)
