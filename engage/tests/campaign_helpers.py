"""Helpers of the SmartEngage tests (orchestrator, campaigns, API): a customer due a reminder, the model's text."""

import datetime as dt

from django.utils import timezone

from crm.tests.factories import BookingFactory, CustomerFactory

# A Bengali reminder with the placeholder the orchestrator replaces with the signed booking link.
AI_TEXT = "প্রিয় গ্রাহক, আপনার হোম ক্লিনিং সার্ভিসের সময় হয়েছে। এখনই বুক করুন: [BOOKING_LINK]"


def customer_due(company, *, days=22, **contact):
    """A customer whose last completed booking finished `days` (and two hours) ago; `contact` sets contact fields."""
    customer = CustomerFactory(company=company, **{f"contact__{key}": value for key, value in contact.items()})
    booking = BookingFactory(
        company=company, customer=customer, scheduled_at=timezone.now() - dt.timedelta(days=days, hours=2)
    )
    customer.last_booking_at = booking.finished_at
    customer.save(update_fields=["last_booking_at"])
    return customer
