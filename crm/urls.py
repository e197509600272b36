"""CRM REST endpoints, mounted under /api/ by shokti/urls.py."""

from django.urls import path

from crm.apis import ContactsApi, LeadListApi

urlpatterns = [
    path("contacts/", ContactsApi.as_view(), name="contacts"),
    path("leads/", LeadListApi.as_view(), name="leads"),
]
