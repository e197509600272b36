"""The bookings feed: data in and out of the CRM graph.

REST create/read/update/upsert (by the caller's `external_id`) and bulk endpoints, CSV/XLSX import
and export in the console, and `manage.py import_bookings` for the first load. One set of typed rows
(`rows.py`) and one set of services (`services.py`) serve all of them, so a row means the same thing
whichever way it arrives. See docs/data-api.md.
"""
