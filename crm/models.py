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

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    default_region = models.CharField(
        max_length=2, default="BD", help_text="ISO country code used to read phone numbers without a +prefix."
    )
    timezone = models.CharField(max_length=64, default="Asia/Dhaka")
    is_active = models.BooleanField(default=True)
    webhook_url = models.URLField(blank=True, help_text="Where webhook_reminder jobs POST signed events.")
    webhook_secret = models.CharField(max_length=128, blank=True)
    # Every marketing email carries the sender's name and postal address (CAN-SPAM; Gmail and Yahoo's
    # bulk-sender rules): a company without an address sends no marketing email.
    postal_address = models.TextField(blank=True, help_text="The postal address printed in every marketing email.")
    is_email_open_tracking_enabled = models.BooleanField(
        "track email opens",
        default=False,
        help_text="Add an open-tracking image to emails. Off by default: a lone image in a short mail costs spam score.",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"

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

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log into the admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
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
        OWNER = "owner", "Owner"
        OPERATIONS = "operations", "Operations"
        MARKETING = "marketing", "Marketing"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OPERATIONS)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "company"], name="membership_unique_user_company")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.company} ({self.role})"


class ApiKey(models.Model):
    """A server-to-server credential of one company. Only a hash is stored; the key is shown once."""

    PREFIX_LENGTH = 12

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=PREFIX_LENGTH, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

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

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP_CLOUD = "whatsapp_cloud", "WhatsApp Cloud API"
    WHATSAPP_WEB = "whatsapp_web", "WhatsApp Web"
    CONSOLE = "console", "Console (development)"


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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contacts", db_index=False)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +8801712345678")
    email = models.EmailField(blank=True)
    locale = models.CharField(max_length=10, default="bn")
    timezone = models.CharField(max_length=64, default="Asia/Dhaka")
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    is_email_consented = models.BooleanField(default=False)
    is_sms_consented = models.BooleanField(default=False)
    is_whatsapp_consented = models.BooleanField(default=False)
    consent_updated_at = models.DateTimeField(null=True, blank=True)
    user = models.OneToOneField(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="contact"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=100)
    is_default = models.BooleanField(default=False)
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    created_at = models.DateTimeField(default=now, editable=False)

    DEFAULT_STAGES = (("New", "open"), ("Contacted", "open"), ("Qualified", "open"), ("Won", "won"), ("Lost", "lost"))

    class Meta:
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

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100)
    order = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OPEN)
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="The caller's own id (unique per pipeline)."
    )

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="leads", db_index=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="leads")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="leads")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="leads")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    channel = models.CharField(max_length=20, choices=Channel.choices, default=Channel.CONSOLE)
    source = models.CharField(max_length=100, blank=True)
    # The click-to-WhatsApp ad the lead came from (source "ad"), as Meta's referral names it.
    # Database defaults too: the inbound hot path inserts leads with plain SQL naming older columns.
    ad_source_id = models.CharField("ad id", max_length=100, blank=True, default="", db_default="")
    ad_headline = models.CharField(max_length=300, blank=True, default="", db_default="")
    ad_url = models.CharField("ad URL", max_length=1000, blank=True, default="", db_default="")
    ad_click_id = models.CharField("ad click id (ctwa_clid)", max_length=500, blank=True, default="", db_default="")
    ad_referral = models.JSONField(
        "ad referral", default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField())
    )
    owner = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_leads")
    summary = models.TextField(blank=True)
    score = models.SmallIntegerField(default=0, validators=[MinValueValidator(0), MaxValueValidator(100)])
    is_ai_paused = models.BooleanField(default=False, help_text="A human has taken the conversation over.")
    handoff_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When the contact asked for a human (cleared on hand-back)."
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=200)
    name_bn = models.CharField("name (Bengali)", max_length=200, blank=True)
    category = models.CharField(max_length=100, db_index=True)
    base_price = models.DecimalField(max_digits=10, decimal_places=2, validators=[MinValueValidator(0)])
    duration_minutes = models.PositiveIntegerField(default=60)
    is_active = models.BooleanField(default=True)
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="customers")
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="customer")
    typical_services = models.ManyToManyField(Service, blank=True, related_name="typical_customers")
    last_booking_at = models.DateTimeField(null=True, blank=True, help_text="Finish time of the last completed booking.")
    is_active = models.BooleanField(
        default=True, db_default=True, help_text="Off: deleted by the marketplace; never reminded."
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="workers")
    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="worker")
    skills = models.JSONField(default=list, blank=True)
    zones = models.JSONField(default=list, blank=True)
    ratings_avg = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
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
        CUSTOMER = "customer", "Customer"
        WORKER = "worker", "Worker"
        COMPANY = "company", "Company (operations)"
        SYSTEM = "system", "System (no-show, timeout)"

    # No single-column indexes on company, customer and worker: the composite indexes below start with
    # them and serve the same lookups (and cascades); each index is paid for on every booking written.
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="bookings", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="bookings", db_index=False)
    worker = models.ForeignKey(Worker, on_delete=models.SET_NULL, null=True, blank=True, related_name="bookings",
                               db_index=False)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="bookings")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    scheduled_at = models.DateTimeField()
    arrived_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=20, choices=CancelledBy.choices, blank=True, default="", db_default="")
    cancellation_reason = models.CharField(max_length=200, blank=True, default="", db_default="")
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    zone = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="Where the job was (area, thana)."
    )
    correlation_id = models.UUIDField(
        null=True, blank=True, help_text="The correlation id of the message that led to this booking."
    )
    external_id = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="The caller's own id (unique per company): what upserts match on.",
    )
    created_at = models.DateTimeField(default=now, help_text="When the booking was made (the source's time).")
    updated_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
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
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=64)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="events", db_index=False
    )
    target_type = models.ForeignKey(ContentType, on_delete=models.SET_NULL, null=True, blank=True, db_index=False)
    target_id = models.CharField(max_length=64, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    payload = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=64, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    correlation_id = models.UUIDField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=now)

    class Meta:
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

    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="imports", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    source = models.CharField(max_length=20, default="console", help_text="console or command.")
    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=10, help_text="csv, xlsx or jsonl.")
    file_sha256 = models.CharField(max_length=64, blank=True)
    data = models.BinaryField(blank=True, default=b"", editable=False, help_text="The file, until it is imported.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PREVIEWED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0, help_text="Rows done: where a resumed run goes on.")
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The failed rows: [{row, errors}], the first few thousand.")
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["company", "-created_at"], name="import_company_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from {self.file_name} ({self.status})"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.COMPLETED else 0
        return min(100, int(100 * self.processed_rows / self.total_rows))
