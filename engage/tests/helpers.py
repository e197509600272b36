"""Small helpers shared by D2's engage tests: capture an inbound message, run a ledger job now."""

from django.utils import timezone

from engage.conversations.inbound import inbound_message_capture
from engage.ledger.services import job_execute
from engage.models import Job


def capture(company, text, *, phone="+8801711000001", channel="console", name="Rahim"):
    return inbound_message_capture(company=company, channel=channel, text=text, phone=phone, contact_name=name)


def run_job(job_or_id) -> str:
    """Run a ledger job in this process as a worker would, as if its time had come."""
    job_id = getattr(job_or_id, "pk", job_or_id)
    Job.objects.filter(pk=job_id).update(next_run_at=timezone.now())
    return job_execute(job_id=job_id, worker="test")


def jobs(task_name, **filters):
    return list(Job.objects.filter(task_name=task_name, **filters).order_by("id"))
