"""The AI's settings, its call records, its knowledge and its safety lists (see docs/ai.md)."""

import json

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from engage.ai.links import link_domains_clean
from engage.messaging.models import AgentType

DEFAULT_HANDOFF_KEYWORDS = ["human", "agent", "real person", "representative", "মানুষ", "এজেন্ট", "প্রতিনিধি"]


def default_handoff_keywords() -> list[str]:
    return list(DEFAULT_HANDOFF_KEYWORDS)


class AIConfig(models.Model):
    """One per company: how its AI talks, and how persistent its follow-ups are."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="ai_config")
    model = models.CharField(max_length=100, default="gpt-4o-mini")
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0), MaxValueValidator(2)])
    max_tokens = models.PositiveIntegerField(default=500, validators=[MinValueValidator(1), MaxValueValidator(16000)])
    system_prompt = models.TextField(
        blank=True,
        default=(
            "You are a friendly, honest sales assistant. Answer briefly in the customer's language, "
            "use only the facts you are given, and never invent prices or promises."
        ),
    )
    api_base_url = models.URLField(blank=True, help_text="Optional: this company's own OpenAI-compatible endpoint.")
    api_key = models.CharField(max_length=300, blank=True, help_text="Optional: this company's own key (write-only).")
    is_reply_enabled = models.BooleanField(default=True, help_text="Answer inbound messages with AI replies.")
    followup_after_hours = models.PositiveIntegerField(default=24, help_text="Silence before a bump-up.")
    followup_cadence_hours = models.PositiveIntegerField(default=24, help_text="Between further bump-ups.")
    followup_max = models.PositiveSmallIntegerField(default=3, help_text="Bump-ups after one inbound message, at most.")
    sms_max_segments = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text="SMS length limit, in segments (70 UCS-2 / 160 GSM chars)."
    )
    allowed_contact_details = models.JSONField(
        default=list, blank=True, help_text="The company's own phone numbers and emails, which AI messages may mention."
    )
    required_link = models.URLField(blank=True, help_text="If set, every AI message must contain this link.")
    allowed_link_domains = models.JSONField(
        default=list, blank=True,
        help_text='Domains AI messages may link to besides our own link hosts, e.g. ["sheba.xyz"] (subdomains '
        "included). Every other link is rejected.",
    )
    time_budget_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="One deadline for a model call with its retries, moderation and tone judge; then the fallback "
        "goes out. Empty: AI_TIME_BUDGET_SECONDS (15 s).",
    )
    is_moderation_enabled = models.BooleanField(
        default=True,
        help_text="With an API key, the model's text also goes through the endpoint's moderation (POST "
        "/v1/moderations); switch off for endpoints without one. The offline word lists always run.",
    )
    is_tone_judge_enabled = models.BooleanField(
        default=False,
        help_text="Reminders and coaching: the model also grades its text's tone (polite, respectful address, no "
        "pressure, no blame); a failed grade sends the fallback.",
    )
    handoff_keywords = models.JSONField(
        default=default_handoff_keywords, blank=True, help_text="Inbound words that ask for a human."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "AI configuration"

    def __str__(self) -> str:
        return f"AI configuration of {self.company}"

    def clean(self) -> None:

        self.allowed_link_domains = link_domains_clean(self.allowed_link_domains)


class TextJSONEncoder(json.JSONEncoder):
    """JSON with non-ASCII characters as they are, not as \\uXXXX escapes (what is stored is the same).

    A Bengali prompt is 4-5 times longer escaped, and every escape's backslash is escaped again when a
    bulk INSERT sends the batch's values as an array (Django's UNNEST): one campaign batch's AISessions
    then cost 0.7 ms of process CPU a row, mostly in psycopg's array quoting; unescaped, 0.11 ms.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "ensure_ascii": False})


class AISession(models.Model):
    """One model call (or the decision not to make one): prompt, tokens, latency, outcome."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK (model text used)"
        ERROR = "error", "Error (call failed, fallback used)"
        FALLBACK = "fallback", "Fallback (no call made)"
        REJECTED = "rejected", "Rejected by the safety filter (fallback used)"

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="ai_sessions")
    agent_type = models.CharField(max_length=20, choices=AgentType.choices)
    purpose = models.CharField(max_length=40, help_text="reply, followup, summary, sequence_step, reminder ...")
    prompt_messages = models.JSONField(default=list, blank=True, encoder=TextJSONEncoder)
    model = models.CharField(max_length=100, blank=True)
    response_text = models.TextField(blank=True, help_text="What the model answered (even when rejected).")
    final_text = models.TextField(blank=True, help_text="What was used: the model's text or the fallback.")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    error = models.TextField(blank=True, help_text="The error or the reason for the fallback/rejection.")
    safety = models.JSONField(
        default=dict, blank=True, encoder=TextJSONEncoder,
        help_text="The safety filter's findings: every reason (code, message) for the model's text and for the "
        "fallback, the moderation endpoint's and the tone judge's answers, the time budget spent.",
    )
    lead = models.ForeignKey("crm.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions")
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions"
    )
    correlation_id = models.UUIDField(null=True, blank=True)
    message = models.ForeignKey(
        "engage.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions",
        help_text="The outbound message this call produced.",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name = "AI session"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["company", "-created_at"], name="aisession_company_created"),
            models.Index(fields=["lead", "-created_at"], name="aisession_lead_created"),
            models.Index(fields=["correlation_id"], name="aisession_correlation"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_type}/{self.purpose} #{self.pk} ({self.outcome})"


class KnowledgeDoc(models.Model):
    """A passage the AI may quote. `search_vector` is kept current by a database trigger."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="knowledge_docs")
    title = models.CharField(max_length=200)
    body = models.TextField()
    tags = models.JSONField(default=list, blank=True, help_text='A list of words, e.g. ["pricing", "course"].')
    is_active = models.BooleanField(default=True)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "knowledge document"
        ordering = ["company", "title"]
        # The GIN index on search_vector and its trigger are created in migration 0003 (PostgreSQL only).
        indexes = [models.Index(fields=["company", "is_active"], name="knowledgedoc_company_active")]

    def __str__(self) -> str:
        return self.title


class BannedPhrase(models.Model):
    """A phrase no AI message may contain. Without a company it applies to every company."""

    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, null=True, blank=True, related_name="banned_phrases"
    )
    phrase = models.CharField(max_length=200)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["phrase"]
        constraints = [
            models.UniqueConstraint(fields=["company", "phrase"], name="bannedphrase_unique_per_company"),
            models.UniqueConstraint(fields=["phrase"], condition=Q(company__isnull=True), name="bannedphrase_unique_global"),
        ]

    def __str__(self) -> str:
        return self.phrase


class FallbackText(models.Model):
    """An approved text sent when the AI cannot answer. A company's own text wins over the global one."""

    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, null=True, blank=True, related_name="fallback_texts"
    )
    message_type = models.CharField(max_length=40, help_text="reply, followup, reminder, coaching, sequence_step ...")
    locale = models.CharField(max_length=10, default="bn")
    body = models.TextField()
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["message_type", "locale"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "message_type", "locale"], name="fallbacktext_unique_per_company"
            ),
            models.UniqueConstraint(
                fields=["message_type", "locale"], condition=Q(company__isnull=True), name="fallbacktext_unique_global"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type}/{self.locale}"
