"""Short links: a short code on our own host for a long signed deep link.

A signed booking link (token + UTM parameters) is 250-310 characters; a Bengali SMS segment
holds 70 (67 when concatenated), so the link alone would fill four or five. SMS and WhatsApp
messages carry `<SHORT_LINK_BASE_URL><code>` instead; `GET /l/<code>` redirects to the signed
link, whose `/book` verifies the token and records the follow as before (the code itself grants
nothing: it only names a link that is still verified).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class ShortLink(models.Model):
    company = models.ForeignKey("crm.Company", on_delete=models.CASCADE, related_name="short_links")
    code = models.CharField(max_length=16, unique=True)
    target_url = models.TextField(help_text="The signed deep link this code redirects to.")
    correlation_id = models.UUIDField(null=True, blank=True, help_text="The message that carries the link.")
    expires_at = models.DateTimeField(help_text="When the signed link expires; the code answers 410 after it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="shortlink_expires_at")]

    def __str__(self) -> str:
        return self.code
