"""Every inbound and outbound message on every channel."""

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from crm.models import Channel


class AgentType(models.TextChoices):
    """Who speaks: the products' AI agents. (Message.AgentType adds `manual` for humans.)"""

    SMARTENGAGE = "smartengage", _("SmartEngage")
    COACHNOVA = "coachnova", _("CoachNova")
    SALES = "sales", _("Sales")
def inbound_media_storage():
    """The storage of customers' media (INBOUND_MEDIA_STORAGE names an alias of STORAGES; file system by default)."""
    return storages[getattr(settings, "INBOUND_MEDIA_STORAGE", "default")]


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Inbound")
        OUTBOUND = "outbound", _("Outbound")

    class AgentType(models.TextChoices):
        SMARTENGAGE = "smartengage", _("SmartEngage")
        COACHNOVA = "coachnova", _("CoachNova")
        SALES = "sales", _("Sales")
        MANUAL = "manual", _("Manual")

    class MediaType(models.TextChoices):
        IMAGE = "image", _("Photo")
        AUDIO = "audio", _("Audio")
        VOICE = "voice", _("Voice note")
        VIDEO = "video", _("Video")
        DOCUMENT = "document", _("Document")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACTS = "contacts", _("Contact card")

    class MediaStatus(models.TextChoices):
        PENDING = "pending", _("Downloading")
        STORED = "stored", _("Stored")
        REJECTED = "rejected", _("Refused (size or type)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")

    # company, contact, lead: no index of their own; the composite indexes below start with them.
    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="messages", db_index=False, verbose_name=_("company"))
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="messages", db_index=False, verbose_name=_("contact"))
    lead = models.ForeignKey(
        "crm.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages", db_index=False, verbose_name=_("lead")
    )
    direction = models.CharField(max_length=10, choices=Direction.choices, verbose_name=_("direction"))
    channel = models.CharField(max_length=20, choices=Channel.choices, verbose_name=_("channel"))
    agent_type = models.CharField(max_length=20, choices=AgentType.choices, blank=True, verbose_name=_("agent type"))
    message_type = models.CharField(max_length=40, blank=True, help_text=_("reply, followup, reminder, opt_out_confirmation ..."), verbose_name=_("message type"))
    subject = models.CharField(max_length=255, blank=True, verbose_name=_("subject"))
    body = models.TextField(verbose_name=_("body"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    read_at = models.DateTimeField(null=True, blank=True, verbose_name=_("read at"))
    failed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("failed at"))
    played_at = models.DateTimeField(null=True, blank=True, help_text=_("When the recipient played our voice note."), verbose_name=_("played at"))
    provider_message_id = models.CharField(max_length=200, blank=True, verbose_name=_("provider message id"))
    provider_response = models.JSONField(default=dict, blank=True, verbose_name=_("provider response"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    correlation_id = models.UUIDField(null=True, blank=True, db_index=True, verbose_name=_("correlation id"))
    job = models.ForeignKey("engage.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages", verbose_name=_("job"))
    template_version = models.ForeignKey(
        "engage.PromptTemplateVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="messages", verbose_name=_("template version")
    )
    external_id = models.CharField(
        max_length=200, blank=True, help_text=_("The sender's id of an inbound message, or a payload hash: dedupe key."), verbose_name=_("external id")
    )
    # What a customer sent besides text (channels_app.payloads): the media, the button tapped, the
    # message answered. Details that are only shown (location, contacts, reactions, referral,
    # pricing, the full provider error) live in `metadata`.
    # Database defaults too: the hot paths insert messages with plain SQL that names only older columns.
    media_type = models.CharField(max_length=10, choices=MediaType.choices, blank=True, default="", db_default="", verbose_name=_("media type"))
    media_status = models.CharField(max_length=10, choices=MediaStatus.choices, blank=True, default="", db_default="", verbose_name=_("media status"))
    media_file = models.FileField(
        storage=inbound_media_storage, upload_to="inbound", max_length=300, blank=True, default="", db_default="", verbose_name=_("media file")
    )
    media_content_type = models.CharField(max_length=100, blank=True, default="", db_default="", verbose_name=_("media content type"))
    # An outbound message's one attachment, sent by link (the provider fetches it): its public URL; its kind and
    # MIME type are `media_type` and `media_content_type`. What the send made of it is in `metadata`
    # (`media_provider_message_id`, or `media_error`: why the text went alone).
    media_url = models.URLField(max_length=500, blank=True, default="", db_default="", verbose_name=_("media url"))
    media_size = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("media size"))
    button_payload = models.CharField(
        max_length=256, blank=True, default="", db_default="",
        help_text=_("The stable id of the button or list row tapped (or a template button's payload)."), verbose_name=_("button payload"),
    )
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", db_index=False,
        help_text=_("Our message the customer answered (WhatsApp's reply context)."), verbose_name=_("reply to"),
    )
    metadata = models.JSONField(default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField()), verbose_name=_("metadata"))
    channel_number = models.CharField(
        max_length=64, blank=True, default="", db_default="",
        help_text=_("Our number of the conversation: the one an inbound message was written to (WhatsApp"
        " phone_number_id, Twilio To), the one an outbound message went from. Replies go from the number"
        " the customer last wrote to (engage.messaging.selectors.contact_reply_number)."), verbose_name=_("channel number"),
    )
    # The experiment arm this message was sent under (engage.experiments): results are attributed per variant.
    # NULL on the hot paths' plain INSERTs, which name only older columns.
    experiment_assignment = models.ForeignKey(
        "engage.ExperimentAssignment", on_delete=models.SET_NULL, null=True, blank=True, related_name="messages",
        db_index=False, verbose_name=_("experiment assignment"),
    )
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["provider_message_id"], name="message_provider_id"),
            models.Index(
                fields=["experiment_assignment"], condition=Q(experiment_assignment__isnull=False),
                name="message_experiment_assignment",
            ),
            models.Index(fields=["company", "-created_at"], name="message_company_created"),
            models.Index(fields=["contact", "-created_at"], name="message_contact_created"),
            models.Index(fields=["lead", "-created_at"], name="message_lead_created"),
            # Sequences and AI routing branch on the button a customer tapped.
            models.Index(
                fields=["company", "button_payload"], condition=~Q(button_payload=""), name="message_button_payload"
            ),
            models.Index(fields=["reply_to"], condition=Q(reply_to__isnull=False), name="message_reply_to"),
            # The number a contact last wrote to on a channel: one probe per send (contact_reply_number).
            models.Index(
                fields=["contact", "channel", "-created_at"],
                condition=Q(direction="inbound") & ~Q(channel_number=""),
                name="message_contact_reply_number",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="message_unique_provider_id_per_channel",
            ),
            # One outbound message per job: a retried or redelivered task never sends twice.
            models.UniqueConstraint(
                fields=["job"], condition=Q(direction="outbound", job__isnull=False), name="message_one_outbound_per_job"
            ),
            models.UniqueConstraint(
                fields=["company", "external_id"],
                condition=Q(direction="inbound") & ~Q(external_id=""),
                name="message_unique_inbound_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.channel} #{self.pk} ({self.status})"


class MessageAttachment(models.Model):
    """One file a customer sent with an inbound message: a WhatsApp media message carries one, a Twilio MMS
    up to ten (MediaUrl0..N). Each is fetched by the message's `media_download` job within the size and
    type limits, and stored or refused on its own. The message's own `media_*` fields mirror the first
    attachment (what lists and older messages, from before attachments, show)."""

    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="+", db_index=False, verbose_name=_("company"))
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments", db_index=False, verbose_name=_("message"))
    position = models.PositiveSmallIntegerField(help_text=_("Its place in the message: MediaUrl0 is 0."), verbose_name=_("position"))
    media_type = models.CharField(max_length=10, choices=Message.MediaType.choices, verbose_name=_("media type"))
    status = models.CharField(max_length=10, choices=Message.MediaStatus.choices, default=Message.MediaStatus.PENDING, verbose_name=_("status"))
    source = models.JSONField(
        default=dict, blank=True, help_text=_("The provider's reference: account, WhatsApp media id or Twilio MediaUrl, type."), verbose_name=_("source")
    )
    file = models.FileField(storage=inbound_media_storage, upload_to="inbound", max_length=300, blank=True, default="", verbose_name=_("file"))
    content_type = models.CharField(max_length=100, blank=True, default="", verbose_name=_("content type"))
    size = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("size"))
    error = models.CharField(max_length=500, blank=True, default="", help_text=_("Why it was not kept."), verbose_name=_("error"))
    created_at = models.DateTimeField(default=now, editable=False, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("message attachment")
        verbose_name_plural = _("message attachments")
        ordering = ["message_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="message_attachment_one_per_position"),
        ]

    def __str__(self) -> str:
        return f"{self.get_media_type_display()} {self.position} of message #{self.message_id} ({self.status})"
