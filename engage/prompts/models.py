"""Prompt templates with immutable, approvable versions (see docs/ai.md)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from engage.messaging.models import AgentType


class PromptTemplate(models.Model):
    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="prompt_templates", verbose_name=_("company"))
    agent_type = models.CharField(max_length=20, choices=AgentType.choices, verbose_name=_("agent type"))
    locale = models.CharField(max_length=10, default="bn", verbose_name=_("locale"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.CharField(max_length=300, blank=True, verbose_name=_("description"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("prompt template")
        verbose_name_plural = _("prompt templates")
        ordering = ["company", "agent_type", "locale", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "agent_type", "locale", "name"], name="prompttemplate_unique_name"
            )
        ]
        # The template studio: who may make a version the one campaigns and replies use.
        permissions = [("publish_prompttemplate", "Can publish and roll back prompt template versions")]

    def __str__(self) -> str:
        return f"{self.name} ({self.agent_type}/{self.locale})"


class PromptTemplateVersion(models.Model):
    """One version of a template. The body never changes after create: edit = a new version."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        APPROVED = "approved", _("Approved")
        ARCHIVED = "archived", _("Archived")

    template = models.ForeignKey(PromptTemplate, on_delete=models.CASCADE, related_name="versions", verbose_name=_("template"))
    number = models.PositiveIntegerField(verbose_name=_("number"))
    body = models.TextField(verbose_name=_("body"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, verbose_name=_("status"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("author")
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("approved by")
    )
    approved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("approved at"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("prompt template version")
        verbose_name_plural = _("prompt template versions")
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="prompttemplateversion_unique_number"),
            models.UniqueConstraint(
                fields=["template"], condition=Q(status="approved"), name="prompttemplateversion_one_approved"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number} ({self.status})"

    def save(self, *args, **kwargs):
        if not self._state.adding and self.pk:
            stored_body = type(self).objects.filter(pk=self.pk).values_list("body", flat=True).first()
            if stored_body is not None and stored_body != self.body:
                raise ValidationError({"body": "A template version is immutable: create a new version instead."})
        super().save(*args, **kwargs)
