"""Reads of the feed: the company's customers, workers, services, bookings and pipelines, filtered."""

from __future__ import annotations

from django.db.models import F, Prefetch, QuerySet

from crm.feed import filters
from crm.models import Booking, Company, Customer, Lead, Pipeline, Service, Stage, Worker
from crm.selectors import _filtered, _with_phone_normalized


def customer_queryset(*, company: Company) -> QuerySet[Customer]:
    return (
        Customer.objects.filter(company=company)
        .select_related("contact")
        .prefetch_related(Prefetch("typical_services", queryset=Service.objects.only("id", "external_id")))
    )


def customer_list(*, company: Company, filters_data: dict | None = None) -> QuerySet[Customer]:
    """The company's customers, newest first; filters: crm.feed.filters.CustomerFilter."""
    data = _with_phone_normalized(filters_data, company=company)
    return _filtered(filters.CustomerFilter, data=data, queryset=customer_queryset(company=company).order_by("-id"))


def worker_queryset(*, company: Company) -> QuerySet[Worker]:
    return Worker.objects.filter(company=company).select_related("contact")


def worker_list(*, company: Company, filters_data: dict | None = None) -> QuerySet[Worker]:
    data = _with_phone_normalized(filters_data, company=company)
    return _filtered(filters.WorkerFilter, data=data, queryset=worker_queryset(company=company).order_by("-id"))


def service_queryset(*, company: Company) -> QuerySet[Service]:
    return Service.objects.filter(company=company)


def service_list_filtered(*, company: Company, filters_data: dict | None = None) -> QuerySet[Service]:
    return _filtered(filters.ServiceFilter, data=filters_data, queryset=service_queryset(company=company).order_by("-id"))


def booking_queryset(*, company: Company) -> QuerySet[Booking]:
    # The references' external ids come along by join; the referenced rows themselves are not loaded.
    return Booking.objects.filter(company=company).annotate(
        customer_external_id=F("customer__external_id"),
        worker_external_id=F("worker__external_id"),
        service_external_id=F("service__external_id"),
    )


def booking_list(*, company: Company, filters_data: dict | None = None) -> QuerySet[Booking]:
    return _filtered(filters.BookingFilter, data=filters_data, queryset=booking_queryset(company=company).order_by("-id"))


def pipeline_queryset(*, company: Company) -> QuerySet[Pipeline]:
    return Pipeline.objects.filter(company=company).prefetch_related(
        Prefetch("stages", queryset=Stage.objects.order_by("order"))
    )


def pipeline_list(*, company: Company, filters_data: dict | None = None) -> QuerySet[Pipeline]:
    return _filtered(filters.PipelineFilter, data=filters_data, queryset=pipeline_queryset(company=company).order_by("-id"))


def lead_queryset(*, company: Company) -> QuerySet[Lead]:
    return Lead.objects.filter(company=company).select_related("contact", "pipeline", "stage")


QUERYSETS = {
    "customers": customer_queryset,
    "workers": worker_queryset,
    "services": service_queryset,
    "bookings": booking_queryset,
    "pipelines": pipeline_queryset,
    "leads": lead_queryset,
}


def feed_object_get(*, company: Company, kind: str, pk: int):
    """One object of the company, or None (another company's object is as absent as a missing one)."""
    if kind == "contacts":
        from crm.models import Contact

        return Contact.objects.filter(company=company, pk=pk).first()
    return QUERYSETS[kind](company=company).filter(pk=pk).first()
