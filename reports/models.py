"""Rollup tables and burnout alerts (see docs/architecture.md, "Reports")."""
