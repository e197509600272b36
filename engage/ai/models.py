"""The AI's settings, its call records, its knowledge and its safety lists (see docs/ai.md)."""

import json

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from engage.ai.links import link_domains_clean
from engage.messaging.models import AgentType

DEFAULT_HANDOFF_KEYWORDS = [
    "human", "agent", "real person", "representative", "talk to someone", "speak to someone", "talk to a person",
    "speak to a person", "customer care", "customer service",
    "মানুষ", "এজেন্ট", "প্রতিনিধি", "কাস্টমার কেয়ার", "কারো সাথে কথা বলতে চাই", "কারও সঙ্গে কথা বলতে চাই",
    "manusher sathe kotha", "manush er sathe kotha",
]
# A configuration still holding exactly the shorter list of before 2026-12-08 was given this one (migration 0036).


def default_handoff_keywords() -> list[str]:
    return list(DEFAULT_HANDOFF_KEYWORDS)


class AIConfig(models.Model):
    """One per company: how its AI talks, and how persistent its follow-ups are."""

    company = models.OneToOneField("crm.Company", on_delete=models.CASCADE, related_name="ai_config", verbose_name=_("company"))
    model = models.CharField(max_length=100, default="gpt-4o-mini", verbose_name=_("model"))
    temperature = models.FloatField(default=0.7, validators=[MinValueValidator(0), MaxValueValidator(2)], verbose_name=_("temperature"))
    max_tokens = models.PositiveIntegerField(default=500, validators=[MinValueValidator(1), MaxValueValidator(16000)], verbose_name=_("max tokens"))
    system_prompt = models.TextField(
        blank=True,
        default=(
            "You are a friendly, honest sales assistant. Answer briefly in the customer's language, "
            "use only the facts you are given, and never invent prices or promises."
        ),
        verbose_name=_("system prompt"),
    )
    api_base_url = models.URLField(blank=True, help_text=_("Optional: this company's own OpenAI-compatible endpoint."), verbose_name=_("api base url"))
    api_key = models.CharField(max_length=300, blank=True, help_text=_("Optional: this company's own key (write-only)."), verbose_name=_("api key"))
    is_reply_enabled = models.BooleanField(default=True, help_text=_("Answer inbound messages with AI replies."), verbose_name=_("is reply enabled"))
    followup_after_hours = models.PositiveIntegerField(default=24, help_text=_("Silence before a bump-up."), verbose_name=_("followup after hours"))
    followup_cadence_hours = models.PositiveIntegerField(default=24, help_text=_("Between further bump-ups."), verbose_name=_("followup cadence hours"))
    followup_max = models.PositiveSmallIntegerField(default=3, help_text=_("Bump-ups after one inbound message, at most."), verbose_name=_("followup max"))
    sms_max_segments = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1)], help_text=_("SMS length limit, in segments (70 UCS-2 / 160 GSM chars)."), verbose_name=_("sms max segments")
    )
    allowed_contact_details = models.JSONField(
        default=list, blank=True, help_text=_("The company's own phone numbers and emails, which AI messages may mention."), verbose_name=_("allowed contact details")
    )
    required_link = models.URLField(blank=True, help_text=_("If set, every AI message must contain this link."), verbose_name=_("required link"))
    allowed_link_domains = models.JSONField(
        default=list, blank=True,
        help_text=_('Domains AI messages may link to besides our own link hosts, e.g. ["sheba.xyz"] (subdomains '
        "included). Every other link is rejected."), verbose_name=_("allowed link domains"),
    )
    time_budget_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text=_("One deadline for a model call with its retries, moderation and tone judge; then the fallback "
        "goes out. Empty: AI_TIME_BUDGET_SECONDS (15 s)."), verbose_name=_("time budget seconds"),
    )
    is_moderation_enabled = models.BooleanField(
        default=True,
        help_text=_("With an API key, the model's text also goes through the endpoint's moderation (POST "
        "/v1/moderations); switch off for endpoints without one. The offline word lists always run."), verbose_name=_("is moderation enabled"),
    )
    is_tone_judge_enabled = models.BooleanField(
        default=False,
        help_text=_("Reminders and coaching: the model also grades its text's tone (polite, respectful address, no "
        "pressure, no blame); a failed grade sends the fallback."), verbose_name=_("is tone judge enabled"),
    )
    handoff_keywords = models.JSONField(
        default=default_handoff_keywords, blank=True, help_text=_("Inbound words that ask for a human."), verbose_name=_("handoff keywords")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("AI configuration")
        verbose_name_plural = _("AI configurations")

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
        OK = "ok", _("OK (model text used)")
        ERROR = "error", _("Error (call failed, fallback used)")
        FALLBACK = "fallback", _("Fallback (no call made)")
        REJECTED = "rejected", _("Rejected by the safety filter (fallback used)")

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="ai_sessions", verbose_name=_("company"))
    agent_type = models.CharField(max_length=20, choices=AgentType.choices, verbose_name=_("agent type"))
    purpose = models.CharField(max_length=40, help_text=_("reply, followup, summary, sequence_step, reminder ..."), verbose_name=_("purpose"))
    prompt_messages = models.JSONField(default=list, blank=True, encoder=TextJSONEncoder, verbose_name=_("prompt messages"))
    model = models.CharField(max_length=100, blank=True, verbose_name=_("model"))
    response_text = models.TextField(blank=True, help_text=_("What the model answered (even when rejected)."), verbose_name=_("response text"))
    final_text = models.TextField(blank=True, help_text=_("What was used: the model's text or the fallback."), verbose_name=_("final text"))
    tokens_in = models.PositiveIntegerField(default=0, verbose_name=_("tokens in"))
    tokens_out = models.PositiveIntegerField(default=0, verbose_name=_("tokens out"))
    latency_ms = models.PositiveIntegerField(default=0, verbose_name=_("latency ms"))
    outcome = models.CharField(max_length=10, choices=Outcome.choices, verbose_name=_("outcome"))
    error = models.TextField(blank=True, help_text=_("The error or the reason for the fallback/rejection."), verbose_name=_("error"))
    safety = models.JSONField(
        default=dict, blank=True, encoder=TextJSONEncoder,
        help_text=_("The safety filter's findings: every reason (code, message) for the model's text and for the "
        "fallback, the moderation endpoint's and the tone judge's answers, the time budget spent."), verbose_name=_("safety"),
    )
    lead = models.ForeignKey("crm.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions", verbose_name=_("lead"))
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions", verbose_name=_("contact")
    )
    correlation_id = models.UUIDField(null=True, blank=True, verbose_name=_("correlation id"))
    message = models.ForeignKey(
        "engage.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_sessions",
        help_text=_("The outbound message this call produced."), verbose_name=_("message"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("AI session")
        verbose_name_plural = _("AI sessions")
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

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="knowledge_docs", verbose_name=_("company"))
    title = models.CharField(max_length=200, verbose_name=_("title"))
    body = models.TextField(verbose_name=_("body"))
    tags = models.JSONField(default=list, blank=True, help_text=_('A list of words, e.g. ["pricing", "course"].'), verbose_name=_("tags"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    search_vector = SearchVectorField(null=True, editable=False, verbose_name=_("search vector"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("knowledge document")
        verbose_name_plural = _("knowledge documents")
        ordering = ["company", "title"]
        # The GIN index on search_vector and its trigger are created in migration 0003 (PostgreSQL only).
        indexes = [models.Index(fields=["company", "is_active"], name="knowledgedoc_company_active")]

    def __str__(self) -> str:
        return self.title


class BannedPhrase(models.Model):
    """A phrase no AI message may contain. Without a company it applies to every company."""

    company = models.ForeignKey(
        "crm.Company", on_delete=models.CASCADE, null=True, blank=True, related_name="banned_phrases", verbose_name=_("company")
    )
    phrase = models.CharField(max_length=200, verbose_name=_("phrase"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("banned phrase")
        verbose_name_plural = _("banned phrases")
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
        "crm.Company", on_delete=models.CASCADE, null=True, blank=True, related_name="fallback_texts", verbose_name=_("company")
    )
    message_type = models.CharField(max_length=40, help_text=_("reply, followup, reminder, coaching, sequence_step ..."), verbose_name=_("message type"))
    locale = models.CharField(max_length=10, default="bn", verbose_name=_("locale"))
    body = models.TextField(verbose_name=_("body"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("approved by")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("fallback text")
        verbose_name_plural = _("fallback texts")
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
