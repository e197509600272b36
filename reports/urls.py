from django.contrib import admin
from django.urls import path

from reports import apis
from reports.dashboard import breakdown_csv, breakdown_view

urlpatterns = [
    path("admin/reports/breakdown/", admin.site.admin_view(breakdown_view), name="reports-breakdown"),
    path("admin/reports/breakdown.csv", admin.site.admin_view(breakdown_csv), name="reports-breakdown-csv"),
    path("api/reports/cards/<str:card>/", apis.ReportCardApi.as_view(), name="reports-card"),
    path("api/reports/breakdown/", apis.ReportBreakdownApi.as_view(), name="reports-breakdown-api"),
]
