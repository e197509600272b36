"""The manager dashboard: rollups keyed by company and local date, the console's home, burnout alerts and
`/api/reports/`. It reads engage (through `engage.api`), coaching, channels_app and crm, and nothing below
imports it."""
