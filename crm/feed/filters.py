"""django-filter FilterSets of the feed's lists (the selectors apply them; the API documents them)."""

import django_filters

from crm.models import Booking, Customer, Pipeline, Service, Worker


class _SyncFilter(django_filters.FilterSet):
    external_id = django_filters.CharFilter(help_text="Your id: exact.")
    updated_after = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Changed at or after this time (ISO 8601): for syncs."
    )


class _PersonFilter(_SyncFilter):
    phone = django_filters.CharFilter(field_name="contact__phone", help_text="E.164, or local to the company's region.")
    email = django_filters.CharFilter(field_name="contact__email", lookup_expr="iexact")
    is_active = django_filters.BooleanFilter()


class CustomerFilter(_PersonFilter):
    last_booking_after = django_filters.IsoDateTimeFilter(field_name="last_booking_at", lookup_expr="gte")
    last_booking_before = django_filters.IsoDateTimeFilter(field_name="last_booking_at", lookup_expr="lt")

    class Meta:
        model = Customer
        fields = ["external_id", "phone", "email", "is_active", "updated_after", "last_booking_after",
                  "last_booking_before"]


class WorkerFilter(_PersonFilter):
    class Meta:
        model = Worker
        fields = ["external_id", "phone", "email", "is_active", "updated_after"]


class ServiceFilter(_SyncFilter):
    category = django_filters.CharFilter()
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Service
        fields = ["external_id", "category", "is_active", "updated_after"]


class BookingFilter(_SyncFilter):
    status = django_filters.ChoiceFilter(choices=Booking.Status.choices)
    customer_id = django_filters.NumberFilter()
    customer_external_id = django_filters.CharFilter(field_name="customer__external_id")
    worker_id = django_filters.NumberFilter()
    worker_external_id = django_filters.CharFilter(field_name="worker__external_id")
    service_id = django_filters.NumberFilter()
    scheduled_after = django_filters.IsoDateTimeFilter(field_name="scheduled_at", lookup_expr="gte")
    scheduled_before = django_filters.IsoDateTimeFilter(field_name="scheduled_at", lookup_expr="lt")

    class Meta:
        model = Booking
        fields = ["external_id", "status", "customer_id", "customer_external_id", "worker_id", "worker_external_id",
                  "service_id", "scheduled_after", "scheduled_before", "updated_after"]


class PipelineFilter(django_filters.FilterSet):
    external_id = django_filters.CharFilter()
    name = django_filters.CharFilter()

    class Meta:
        model = Pipeline
        fields = ["external_id", "name"]
