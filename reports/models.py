"""Rollup tables and burnout alerts (see docs/architecture.md, "Reports")."""

from reports.burnout.models import BurnoutAlert, BurnoutSettings  # noqa: F401  (burnout alerts' tables)
