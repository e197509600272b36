"""django-filter FilterSets for the CRM lists; the selectors apply them."""

import django_filters

from crm.models import Contact, Lead


class ContactFilter(django_filters.FilterSet):
    phone = django_filters.CharFilter(field_name="phone", help_text="E.164, or local to the company's region.")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Contact
        fields = ["phone", "email"]


class LeadFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Lead.Status.choices)
    stage = django_filters.NumberFilter(field_name="stage_id")
    pipeline = django_filters.NumberFilter(field_name="pipeline_id")
    phone = django_filters.CharFilter(field_name="contact__phone")

    class Meta:
        model = Lead
        fields = ["status", "stage", "pipeline", "phone"]
