"""CRM REST endpoints, mounted under /api/ by shokti/urls.py.

Every path answers with or without its trailing slash (`/api/bookings/bulk` and `/api/bookings/bulk/`):
integrators copy paths from docs, and a POST redirected to the slashed path would lose its body.
"""

from django.urls import path, re_path, resolve
from django.views.decorators.csrf import csrf_exempt

from crm.apis import ContactsApi
from crm.feed import apis as feed

urlpatterns = [
    path("contacts/", ContactsApi.as_view(), name="contacts"),
    path("contacts/<int:pk>/", feed.ContactDetailApi.as_view(), name="contact"),
    path("contacts/by-external-id/<str:external_id>/", feed.ContactUpsertApi.as_view(), name="contact-upsert"),
    path("leads/", feed.LeadsApi.as_view(), name="leads"),
    path("leads/<int:pk>/", feed.LeadDetailApi.as_view(), name="lead"),
    path("leads/by-external-id/<str:external_id>/", feed.LeadUpsertApi.as_view(), name="lead-upsert"),
    path("customers/", feed.CustomersApi.as_view(), name="customers"),
    path("customers/bulk/", feed.CustomerBulkApi.as_view(), name="customers-bulk"),
    path("customers/<int:pk>/", feed.CustomerDetailApi.as_view(), name="customer"),
    path("customers/by-external-id/<str:external_id>/", feed.CustomerUpsertApi.as_view(), name="customer-upsert"),
    path("workers/", feed.WorkersApi.as_view(), name="workers"),
    path("workers/bulk/", feed.WorkerBulkApi.as_view(), name="workers-bulk"),
    path("workers/<int:pk>/", feed.WorkerDetailApi.as_view(), name="worker"),
    path("workers/by-external-id/<str:external_id>/", feed.WorkerUpsertApi.as_view(), name="worker-upsert"),
    path("services/", feed.ServicesApi.as_view(), name="catalogue-services"),
    path("services/<int:pk>/", feed.ServiceDetailApi.as_view(), name="catalogue-service"),
    path("services/by-external-id/<str:external_id>/", feed.ServiceUpsertApi.as_view(), name="service-upsert"),
    path("bookings/", feed.BookingsApi.as_view(), name="bookings"),
    path("bookings/bulk/", feed.BookingBulkApi.as_view(), name="bookings-bulk"),
    path("bookings/<int:pk>/", feed.BookingDetailApi.as_view(), name="booking"),
    path("bookings/by-external-id/<str:external_id>/", feed.BookingUpsertApi.as_view(), name="booking-upsert"),
    path("pipelines/", feed.PipelinesApi.as_view(), name="pipelines"),
    path("pipelines/<int:pk>/", feed.PipelineDetailApi.as_view(), name="pipeline"),
    path("pipelines/by-external-id/<str:external_id>/", feed.PipelineUpsertApi.as_view(), name="pipeline-upsert"),
    path("company/", feed.CompanySettingsApi.as_view(), name="company-settings"),
]


@csrf_exempt
def _without_slash(request, rest: str):
    """The same endpoint as `rest` + "/", served in place (no redirect: a POST keeps its body)."""
    match = resolve(f"/api/{rest}/")
    return match.func(request, *match.args, **match.kwargs)


urlpatterns.append(re_path(r"^(?P<rest>.+[^/])$", _without_slash))
