"""The tenants and the CRM graph. Every domain row carries its `company`."""

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _


class Company(models.Model):
    """The tenant."""

    name = models.CharField(max_length=200, verbose_name=_("name"))
    slug = models.SlugField(max_length=80, unique=True, verbose_name=_("slug"))
    default_region = models.CharField(
        max_length=2, default="BD", help_text=_("ISO country code used to read phone numbers without a +prefix."), verbose_name=_("default region")
    )
    timezone = models.CharField(max_length=64, default="Asia/Dhaka", verbose_name=_("timezone"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    webhook_url = models.URLField(blank=True, help_text=_("Where webhook_reminder jobs POST signed events."), verbose_name=_("webhook url"))
    webhook_secret = models.CharField(max_length=128, blank=True, verbose_name=_("webhook secret"))
    # Every marketing email carries the sender's name and postal address (CAN-SPAM; Gmail and Yahoo's
    # bulk-sender rules): a company without an address sends no marketing email.
    postal_address = models.TextField(blank=True, help_text=_("The postal address printed in every marketing email."), verbose_name=_("postal address"))
    is_email_open_tracking_enabled = models.BooleanField(
        _("track email opens"),
        default=False,
        help_text=_("Add an open-tracking image to emails. Off by default: a lone image in a short mail costs spam score."),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("company")
        verbose_name_plural = _("companies")

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Staff, and customers/workers who log in with an OTP. Email is the login."""

    email = models.EmailField(unique=True, verbose_name=_("email"))
    full_name = models.CharField(max_length=200, blank=True, verbose_name=_("full name"))
    is_staff = models.BooleanField(default=False, help_text=_("Can log into the admin."), verbose_name=_("is staff"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    date_joined = models.DateTimeField(default=now, verbose_name=_("date joined"))

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Membership(models.Model):
    """How a staff user reaches a company, and in which role."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATIONS = "operations", _("Operations")
        MARKETING = "marketing", _("Marketing")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user"))
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("company"))
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATIONS, verbose_name=_("role"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [models.UniqueConstraint(fields=["user", "company"], name="membership_unique_user_company")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company} ({self.role})"


class ApiKey(models.Model):
    """A server-to-server credential of one company. Only a hash is stored; the key is shown once."""

    PREFIX_LENGTH = 12

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("company"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False, verbose_name=_("prefix"))
    hashed_key = models.CharField(max_length=64, editable=False, verbose_name=_("hashed key"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash(raw_key: str) -> str:
        # Keys are 256 random bits: a fast hash is enough (nothing to brute-force).
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @classmethod
    def generate(cls) -> tuple[str, str]:
        """A new (prefix, raw_key) pair; the raw key is `sk_<prefix>_<secret>`."""
        prefix = secrets.token_hex(cls.PREFIX_LENGTH // 2)
        return prefix, f"sk_{prefix}_{secrets.token_urlsafe(32)}"


class Channel(models.TextChoices):
    """The channels a message can travel on."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    WHATSAPP_CLOUD = "whatsapp_cloud", _("WhatsApp Cloud API")
    WHATSAPP_WEB = "whatsapp_web", _("WhatsApp Web")
    CONSOLE = "console", _("Console (development)")


class Contact(models.Model):
    """One person known to a company. Consent is kept per channel family."""

    # Which consent flag governs each channel.
    CONSENT_FIELD_BY_CHANNEL = {
        Channel.EMAIL: "is_email_consented",
        Channel.SMS: "is_sms_consented",
        Channel.WHATSAPP_CLOUD: "is_whatsapp_consented",
        Channel.WHATSAPP_WEB: "is_whatsapp_consented",
        Channel.CONSOLE: "is_sms_consented",
    }

    # No index of its own: the composite indexes below start with this column (fewer indexes to write).
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contacts", db_index=False, verbose_name=_("company"))
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    phone = models.CharField(max_length=20, blank=True, help_text=_("E.164, e.g. +8801712345678"), verbose_name=_("phone"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    locale = models.CharField(max_length=10, default="bn", verbose_name=_("locale"))
    timezone = models.CharField(max_length=64, default="Asia/Dhaka", verbose_name=_("timezone"))
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    is_email_consented = models.BooleanField(default=False, verbose_name=_("is email consented"))
    is_sms_consented = models.BooleanField(default=False, verbose_name=_("is sms consented"))
    is_whatsapp_consented = models.BooleanField(default=False, verbose_name=_("is whatsapp consented"))
    consent_updated_at = models.DateTimeField(null=True, blank=True, verbose_name=_("consent updated at"))
    user = models.OneToOneField(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="contact", verbose_name=_("user")
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "phone"], condition=~Q(phone=""), name="contact_unique_phone_per_company"
            ),
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="contact_unique_external_id_per_company",
            ),
        ]
        indexes = [models.Index(fields=["company", "email"], name="contact_company_email")]

    def __str__(self) -> str:
        return self.name or self.phone or self.email or f"Contact {self.pk}"

    def is_consented(self, channel: str) -> bool:
        return bool(getattr(self, self.CONSENT_FIELD_BY_CHANNEL[Channel(channel)]))


class Pipeline(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="pipelines", verbose_name=_("company"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    is_default = models.BooleanField(default=False, verbose_name=_("is default"))
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))

    DEFAULT_STAGES = (("New", "open"), ("Contacted", "open"), ("Qualified", "open"), ("Won", "won"), ("Lost", "lost"))

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="pipeline_unique_name_per_company"),
            models.UniqueConstraint(
                fields=["company"], condition=Q(is_default=True), name="pipeline_one_default_per_company"
            ),
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="pipeline_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.company}: {self.name}"


class Stage(models.Model):
    class Kind(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages", verbose_name=_("pipeline"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    order = models.PositiveSmallIntegerField(verbose_name=_("order"))
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OPEN, verbose_name=_("kind"))
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text=_("The caller's own id (unique per pipeline)."), verbose_name=_("external id")
    )

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "order"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "order"], name="stage_unique_order_per_pipeline"),
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_unique_name_per_pipeline"),
            models.UniqueConstraint(
                fields=["pipeline", "external_id"], condition=~Q(external_id=""),
                name="stage_unique_external_id_per_pipeline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"


class Lead(models.Model):
    """A contact's journey through a pipeline."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        WON = "won", _("Won")
        LOST = "lost", _("Lost")

    # No index of its own: the composite indexes below start with this column (fewer indexes to write).
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="leads", db_index=False, verbose_name=_("company"))
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="leads", verbose_name=_("contact"))
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="leads", verbose_name=_("pipeline"))
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="leads", verbose_name=_("stage"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, verbose_name=_("status"))
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.CONSOLE, verbose_name=_("channel"))
    source = models.CharField(max_length=100, blank=True, verbose_name=_("source"))
    # The click-to-WhatsApp ad the lead came from (source "ad"), as Meta's referral names it.
    # Database defaults too: the inbound hot path inserts leads with plain SQL naming older columns.
    ad_source_id = models.CharField(_("ad id"), max_length=100, blank=True, default="", db_default="")
    ad_headline = models.CharField(max_length=300, blank=True, default="", db_default="", verbose_name=_("ad headline"))
    ad_url = models.CharField(_("ad URL"), max_length=1000, blank=True, default="", db_default="")
    ad_click_id = models.CharField(_("ad click id (ctwa_clid)"), max_length=500, blank=True, default="", db_default="")
    ad_referral = models.JSONField(
        _("ad referral"), default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField())
    )
    owner = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_leads", verbose_name=_("owner"))
    summary = models.TextField(blank=True, verbose_name=_("summary"))
    score = models.SmallIntegerField(default=0, validators=[MinValueValidator(0), MaxValueValidator(100)], verbose_name=_("score"))
    is_ai_paused = models.BooleanField(default=False, help_text=_("A human has taken the conversation over."), verbose_name=_("is ai paused"))
    handoff_requested_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the contact asked for a human (cleared on hand-back)."), verbose_name=_("handoff requested at")
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["company", "stage"], name="lead_company_stage"),
            models.Index(fields=["company", "status", "-id"], name="lead_company_status"),
            models.Index(fields=["company", "ad_source_id"], condition=~Q(ad_source_id=""), name="lead_company_ad"),
            # The console: the board's newest open cards and bounded counts per stage, and the inbox's
            # "needs a human" view (few leads of many).
            models.Index(fields=["stage", "-id"], condition=Q(status="open"), name="lead_open_by_stage"),
            models.Index(fields=["company", "handoff_requested_at"], condition=Q(handoff_requested_at__isnull=False),
                         name="lead_company_waiting"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="lead_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.pipeline.name}"


class Service(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="services", verbose_name=_("company"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    name_bn = models.CharField(_("name (Bengali)"), max_length=200, blank=True)
    category = models.CharField(max_length=100, db_index=True, verbose_name=_("category"))
    base_price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)], verbose_name=_("base price"))
    duration_minutes = models.PositiveIntegerField(default=60, verbose_name=_("duration minutes"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["company", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="service_unique_name_per_company"),
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="service_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="customers", verbose_name=_("company"))
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="customer", verbose_name=_("contact"))
    typical_services = models.ManyToManyField(Service, blank=True, related_name="typical_customers", verbose_name=_("typical services"))
    last_booking_at = models.DateTimeField(null=True, blank=True, help_text=_("Finish time of the last completed booking."), verbose_name=_("last booking at"))
    is_active = models.BooleanField(
        default=True, db_default=True, help_text=_("Off: deleted by the marketplace; never reminded."), verbose_name=_("is active")
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [models.Index(fields=["company", "last_booking_at"], name="customer_company_last_booking")]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="customer_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return str(self.contact)


class Worker(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="workers", verbose_name=_("company"))
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="worker", verbose_name=_("contact"))
    skills = models.JSONField(default=list, blank=True, verbose_name=_("skills"))
    zones = models.JSONField(default=list, blank=True, verbose_name=_("zones"))
    ratings_avg = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True, verbose_name=_("ratings avg"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="worker_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return str(self.contact)


class Booking(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    class CancelledBy(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        WORKER = "worker", _("Worker")
        COMPANY = "company", _("Company (operations)")
        SYSTEM = "system", _("System (no-show, timeout)")

    # No single-column indexes on company, customer and worker: the composite indexes below start with
    # them and serve the same lookups (and cascades); each index is paid for on every booking written.
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="bookings", db_index=False, verbose_name=_("company"))
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="bookings", db_index=False, verbose_name=_("customer"))
    worker = models.ForeignKey(Worker, on_delete=models.SET_NULL, null=True, blank=True, related_name="bookings",
                               db_index=False, verbose_name=_("worker"))
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("service"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED, verbose_name=_("status"))
    scheduled_at = models.DateTimeField(verbose_name=_("scheduled at"))
    arrived_at = models.DateTimeField(null=True, blank=True, verbose_name=_("arrived at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    cancelled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancelled at"))
    cancelled_by = models.CharField(max_length=20, choices=CancelledBy.choices, blank=True, default="", db_default="", verbose_name=_("cancelled by"))
    cancellation_reason = models.CharField(max_length=200, blank=True, default="", db_default="", verbose_name=_("cancellation reason"))
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)], verbose_name=_("rating")
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True, verbose_name=_("price"))
    zone = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text=_("Where the job was (area, thana)."), verbose_name=_("zone")
    )
    correlation_id = models.UUIDField(
        null=True, blank=True, help_text=_("The correlation id of the message that led to this booking."), verbose_name=_("correlation id")
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text=_("The caller's own id (unique per company): what upserts match on."), verbose_name=_("external id"),
    )
    created_at = models.DateTimeField(default=now, help_text=_("When the booking was made (the source's time)."), verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["customer", "finished_at"], name="booking_customer_finished"),
            models.Index(fields=["worker", "scheduled_at"], name="booking_worker_scheduled"),
            # With -id: the admin's list orders by -scheduled_at then -id (a stable order), which this index
            # serves without sorting the bookings that share a time.
            models.Index(fields=["company", "-scheduled_at", "-id"], name="booking_company_scheduled_id"),
            # CoachNova's daily refresh reads the bookings changed since its watermark, not all of them.
            models.Index(fields=["company", "updated_at"], name="booking_company_updated"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="booking_rating_1_to_5"
            ),
            models.UniqueConstraint(
                fields=["company", "external_id"], condition=~Q(external_id=""),
                name="booking_unique_external_id_per_company",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service} for {self.customer} at {self.scheduled_at:%Y-%m-%d %H:%M}"


class Event(models.Model):
    """The timeline and audit trail: everything that happened, with what it happened to."""

    # company, contact, target_type: no index of their own; the composite indexes below start with them.
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="events", db_index=False, verbose_name=_("company"))
    type = models.CharField(max_length=64, verbose_name=_("type"))
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="events", db_index=False, verbose_name=_("contact")
    )
    target_type = models.ForeignKey(ContentType, on_delete=models.SET_NULL, null=True, blank=True, db_index=False, verbose_name=_("target type"))
    target_id = models.CharField(max_length=64, blank=True, verbose_name=_("target id"))
    target = GenericForeignKey("target_type", "target_id")
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    source = models.CharField(max_length=64, blank=True, verbose_name=_("source"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("actor")
    )
    correlation_id = models.UUIDField(null=True, blank=True, verbose_name=_("correlation id"))
    occurred_at = models.DateTimeField(default=now, verbose_name=_("occurred at"))

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["correlation_id"], name="event_correlation"),
            models.Index(fields=["company", "-occurred_at"], name="event_company_occurred"),
            models.Index(fields=["contact", "-occurred_at"], name="event_contact_occurred"),
            models.Index(fields=["target_type", "target_id"], name="event_target"),
        ]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ImportRecord(models.Model):
    """One file imported into a company (console upload or `manage.py import_bookings`): who, when, what, counts.

    Holds the uploaded file until it has been imported (web and worker may be different machines:
    the database is what they share), the progress, and the rows that failed with their errors.
    """

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        WORKERS = "workers", _("Workers")
        SERVICES = "services", _("Services")
        BOOKINGS = "bookings", _("Bookings")
        CONTACTS = "contacts", _("Contacts")
        LEADS = "leads", _("Leads")

    class Status(models.TextChoices):
        PREVIEWED = "previewed", _("Previewed (waiting for confirmation)")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="imports", db_index=False, verbose_name=_("company"))
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    source = models.CharField(max_length=20, default="console", help_text=_("console or command."), verbose_name=_("source"))
    file_name = models.CharField(max_length=255, verbose_name=_("file name"))
    file_format = models.CharField(max_length=10, help_text=_("csv, xlsx or jsonl."), verbose_name=_("file format"))
    file_sha256 = models.CharField(max_length=64, blank=True, verbose_name=_("file sha256"))
    data = models.BinaryField(blank=True, default=b"", editable=False, help_text=_("The file, until it is imported."), verbose_name=_("data"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PREVIEWED, verbose_name=_("status"))
    total_rows = models.PositiveIntegerField(default=0, verbose_name=_("total rows"))
    processed_rows = models.PositiveIntegerField(default=0, help_text=_("Rows done: where a resumed run goes on."), verbose_name=_("processed rows"))
    created_count = models.PositiveIntegerField(default=0, verbose_name=_("created count"))
    updated_count = models.PositiveIntegerField(default=0, verbose_name=_("updated count"))
    unchanged_count = models.PositiveIntegerField(default=0, verbose_name=_("unchanged count"))
    error_count = models.PositiveIntegerField(default=0, verbose_name=_("error count"))
    errors = models.JSONField(default=list, blank=True, help_text=_("The failed rows: [{row, errors}], the first few thousand."), verbose_name=_("errors"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("import record")
        verbose_name_plural = _("import records")
        ordering = ["-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="import_company_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.file_name} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.COMPLETED else 0
        return min(100, int(100 * self.processed_rows / self.total_rows))
