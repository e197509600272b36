import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from crm import models


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Company
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Company {n}")
    slug = factory.Sequence(lambda n: f"company-{n}")
    postal_address = "House 12, Road 5, Dhanmondi, Dhaka 1205, Bangladesh"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set(Group.objects.filter(name__in=extracted))
        if create:
            self.save()


class StaffUserFactory(UserFactory):
    is_staff = True


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Contact

    company = factory.SubFactory(CompanyFactory)
    name = factory.Faker("name")
    phone = factory.Sequence(lambda n: f"+8801711{n:06d}")
    email = factory.Sequence(lambda n: f"contact{n}@example.test")
    is_email_consented = True
    is_sms_consented = True
    is_whatsapp_consented = True


class PipelineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Pipeline
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Pipeline {n}")

    @factory.post_generation
    def stages(self, create, extracted, **kwargs):
        if create:
            for order, (name, kind) in enumerate(models.Pipeline.DEFAULT_STAGES, start=1):
                models.Stage.objects.create(pipeline=self, name=name, order=order, kind=kind)


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Lead

    company = factory.SubFactory(CompanyFactory)
    contact = factory.SubFactory(ContactFactory, company=factory.SelfAttribute("..company"))
    pipeline = factory.SubFactory(PipelineFactory, company=factory.SelfAttribute("..company"))
    stage = factory.LazyAttribute(lambda lead: lead.pipeline.stages.order_by("order").first())
    source = "website"


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Service

    company = factory.SubFactory(CompanyFactory)
    name = factory.Sequence(lambda n: f"Home cleaning {n}")
    name_bn = "হোম ক্লিনিং"
    category = "cleaning"
    base_price = Decimal("1500.00")
    duration_minutes = 120


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    company = factory.SubFactory(CompanyFactory)
    contact = factory.SubFactory(ContactFactory, company=factory.SelfAttribute("..company"))


class WorkerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Worker

    company = factory.SubFactory(CompanyFactory)
    contact = factory.SubFactory(ContactFactory, company=factory.SelfAttribute("..company"))
    skills = factory.LazyFunction(lambda: ["cleaning"])
    zones = factory.LazyFunction(lambda: ["Dhanmondi"])


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Booking

    company = factory.SubFactory(CompanyFactory)
    customer = factory.SubFactory(CustomerFactory, company=factory.SelfAttribute("..company"))
    worker = factory.SubFactory(WorkerFactory, company=factory.SelfAttribute("..company"))
    service = factory.SubFactory(ServiceFactory, company=factory.SelfAttribute("..company"))
    status = models.Booking.Status.COMPLETED
    scheduled_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=21))
    arrived_at = factory.LazyAttribute(lambda booking: booking.scheduled_at + dt.timedelta(minutes=5))
    finished_at = factory.LazyAttribute(lambda booking: booking.scheduled_at + dt.timedelta(hours=2))
    rating = 5


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Event

    company = factory.SubFactory(CompanyFactory)
    type = "lead.created"
    source = "test"
