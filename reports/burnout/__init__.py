"""Burnout alerts (issue 21): per-company thresholds, rules computed from crm bookings in the company's time zone,
one open alert per worker with its lifecycle, notifications, the coaching hook. See docs/burnout.md."""
