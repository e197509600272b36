"""The Celery app. Tasks live in each app's tasks.py; schedules in django-celery-beat's tables."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")

app = Celery("shokti")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
