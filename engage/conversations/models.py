"""Sequences: ordered steps a lead walks through, one message per step (see docs/ai.md)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from crm.models import Channel


class Sequence(models.Model):
    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual enrollment only"
        STAGE_ENTERED = "stage_entered", "When a lead enters a stage"

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="sequences")
    name = models.CharField(max_length=100)
    pipeline = models.ForeignKey("crm.Pipeline", on_delete=models.CASCADE, related_name="sequences")
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    trigger_stage = models.ForeignKey(
        "crm.Stage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="For 'when a lead enters a stage': that stage.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="sequence_unique_name_per_company")]
        indexes = [models.Index(fields=["trigger_stage", "is_active"], name="sequence_trigger_stage")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.trigger == self.Trigger.STAGE_ENTERED and self.trigger_stage_id is None:
            raise ValidationError({"trigger_stage": "Choose the stage that starts this sequence."})
        if self.trigger_stage_id and self.pipeline_id and self.trigger_stage.pipeline_id != self.pipeline_id:
            raise ValidationError({"trigger_stage": "The stage belongs to another pipeline."})
        if self.pipeline_id and self.company_id and self.pipeline.company_id != self.company_id:
            raise ValidationError({"pipeline": "The pipeline belongs to another company."})


class SequenceStep(models.Model):
    """One message of a sequence, `delay_minutes` after the previous step (or the enrollment)."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveSmallIntegerField()
    delay_minutes = models.PositiveIntegerField(default=0)
    channel = models.CharField(
        max_length=20, choices=Channel.choices, blank=True, help_text="Empty: the lead's own channel."
    )
    prompt_template = models.ForeignKey(
        "engage.PromptTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Generate the message from this template's approved version ...",
    )
    fixed_text = models.TextField(blank=True, help_text="... or send this text as it is.")
    subject = models.CharField(max_length=200, blank=True, help_text="Email subject.")

    class Meta:
        ordering = ["sequence", "order"]
        constraints = [models.UniqueConstraint(fields=["sequence", "order"], name="sequencestep_unique_order")]

    def __str__(self) -> str:
        return f"{self.sequence} step {self.order}"

    def clean(self) -> None:
        if bool(self.prompt_template_id) == bool(self.fixed_text.strip()):
            raise ValidationError("A step has either a prompt template or a fixed text (exactly one).")
        if self.prompt_template_id and self.prompt_template.agent_type != "sales":
            raise ValidationError({"prompt_template": "A sequence step uses a sales template."})


class Enrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        STOPPED = "stopped", _("Stopped")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="enrollments")
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="enrollments")
    current_step = models.ForeignKey(
        SequenceStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The next step to send.",
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    stop_reason = models.CharField(max_length=100, blank=True)
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["sequence", "lead"], name="enrollment_unique_sequence_lead")]
        indexes = [models.Index(fields=["next_run_at"], name="enrollment_due", condition=Q(status="active"))]

    def __str__(self) -> str:
        return f"{self.lead} in {self.sequence} ({self.status})"
