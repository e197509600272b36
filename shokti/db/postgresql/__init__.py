"""Shokti's PostgreSQL backend: django-prometheus's instrumented backend with a cheaper health check."""
