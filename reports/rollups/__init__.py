"""Rollups: summary tables keyed by (company, local date in the company's time zone, segment), refreshed from a
watermark by the beat (`reports.rollups_tick`) and by `manage.py reports_backfill`. See docs/dashboard.md."""
