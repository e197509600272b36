"""`/`: where "View site" and a newcomer land. A small page that points to the operations console, the API
docs and health, with the demo's first steps when the demo data is there."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from crm.demo import ADMIN_EMAIL, COURSES_SLUG, HOME_SERVICES_SLUG, MARKETING_EMAIL, OPERATIONS_EMAIL
from crm.models import Company


@require_GET
def home(request):
    has_demo = Company.objects.filter(slug__in=[HOME_SERVICES_SLUG, COURSES_SLUG]).exists()
    return render(request, "home.html", {
        "has_demo": has_demo,
        "demo_logins": [("Admin", ADMIN_EMAIL), ("Operations", OPERATIONS_EMAIL), ("Marketing", MARKETING_EMAIL)],
    })
