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
        MANUAL = "manual", _("Manual enrollment only")
        STAGE_ENTERED = "stage_entered", _("When a lead enters a stage")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="sequences", verbose_name=_("company"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    pipeline = models.ForeignKey("crm.Pipeline", on_delete=models.CASCADE, related_name="sequences", verbose_name=_("pipeline"))
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL, verbose_name=_("trigger"))
    trigger_stage = models.ForeignKey(
        "crm.Stage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text=_("For 'when a lead enters a stage': that stage."), verbose_name=_("trigger stage"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("sequence")
        verbose_name_plural = _("sequences")
        ordering = ["company", "name"]
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="sequence_unique_name_per_company")]
        indexes = [models.Index(fields=["trigger_stage", "is_active"], name="sequence_trigger_stage")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.trigger == self.Trigger.STAGE_ENTERED and self.trigger_stage_id is None:
            raise ValidationError({"trigger_stage": _("Choose the stage that starts this sequence.")})
        if self.trigger_stage_id and self.pipeline_id and self.trigger_stage.pipeline_id != self.pipeline_id:
            raise ValidationError({"trigger_stage": _("The stage belongs to another pipeline.")})
        if self.pipeline_id and self.company_id and self.pipeline.company_id != self.company_id:
            raise ValidationError({"pipeline": _("The pipeline belongs to another company.")})


class SequenceStep(models.Model):
    """One message of a sequence, `delay_minutes` after the previous step (or the enrollment)."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps", verbose_name=_("sequence"))
    order = models.PositiveSmallIntegerField(verbose_name=_("order"))
    delay_minutes = models.PositiveIntegerField(default=0, verbose_name=_("delay minutes"))
    channel = models.CharField(
        max_length=20, choices=Channel.choices, blank=True, help_text=_("Empty: the lead's own channel."), verbose_name=_("channel")
    )
    prompt_template = models.ForeignKey(
        "engage.PromptTemplate", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text=_("Generate the message from this template's approved version ..."), verbose_name=_("prompt template"),
    )
    fixed_text = models.TextField(blank=True, help_text=_("... or send this text as it is."), verbose_name=_("fixed text"))
    subject = models.CharField(max_length=200, blank=True, help_text=_("Email subject."), verbose_name=_("subject"))

    class Meta:
        verbose_name = _("sequence step")
        verbose_name_plural = _("sequence steps")
        ordering = ["sequence", "order"]
        constraints = [models.UniqueConstraint(fields=["sequence", "order"], name="sequencestep_unique_order")]

    def __str__(self) -> str:
        return f"{self.sequence} step {self.order}"

    def clean(self) -> None:
        if bool(self.prompt_template_id) == bool(self.fixed_text.strip()):
            raise ValidationError(_("A step has either a prompt template or a fixed text (exactly one)."))
        if self.prompt_template_id and self.prompt_template.agent_type != "sales":
            raise ValidationError({"prompt_template": _("A sequence step uses a sales template.")})


class Enrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        STOPPED = "stopped", _("Stopped")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("company"))
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("sequence"))
    lead = models.ForeignKey("crm.Lead", on_delete=models.CASCADE, related_name="enrollments", verbose_name=_("lead"))
    current_step = models.ForeignKey(
        SequenceStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text=_("The next step to send."), verbose_name=_("current step"),
    )
    next_run_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next run at"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE, verbose_name=_("status"))
    stop_reason = models.CharField(max_length=100, blank=True, verbose_name=_("stop reason"))
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("enrolled by")
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("enrollment")
        verbose_name_plural = _("enrollments")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["sequence", "lead"], name="enrollment_unique_sequence_lead")]
        indexes = [models.Index(fields=["next_run_at"], name="enrollment_due", condition=Q(status="active"))]

    def __str__(self) -> str:
        return f"{self.lead} in {self.sequence} ({self.status})"
