"""The SmartEngage reminder prompt gains the customer's booking history (`{{ booking_history }}`).

Companies whose approved reminder is still the v1 seeded by 0007, word for word, get the same
wording plus the history as a new approved version (v1 archived, kept). A company whose marketers
changed the reminder keeps its own wording: the studio offers the new variable. New companies get
the new text from `engage.prompts.defaults.DEFAULT_TEMPLATES`; this migration keeps its own
frozen copies.
"""

from django.db import migrations
from django.utils import timezone

USER_NAME = "reminder"

V1_BODY = (
    "গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\n"
    "সার্ভিস: {{ service_name_bn }}\n"
    "শেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n"
    "{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}"
    "বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।"
)
WITH_HISTORY_BODY = (
    "গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\n"
    "সার্ভিস: {{ service_name_bn }}\n"
    "শেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n"
    "{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}"
    "{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}"
    "বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।"
)


def add_history(apps, schema_editor):
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    now = timezone.now()
    untouched = PromptTemplateVersion.objects.filter(
        template__agent_type="smartengage", template__locale="bn", template__name=USER_NAME,
        status="approved", body=V1_BODY,
    ).select_related("template")
    for approved in untouched.iterator():
        template = approved.template
        latest = PromptTemplateVersion.objects.filter(template=template).order_by("-number").first()
        PromptTemplateVersion.objects.filter(pk=approved.pk).update(status="archived")
        PromptTemplateVersion.objects.create(
            template=template, number=latest.number + 1, body=WITH_HISTORY_BODY, status="approved", approved_at=now
        )


def remove_history(apps, schema_editor):
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    added = PromptTemplateVersion.objects.filter(
        template__agent_type="smartengage", template__locale="bn", template__name=USER_NAME,
        status="approved", body=WITH_HISTORY_BODY,
    )
    for version in added.iterator():
        previous = (
            PromptTemplateVersion.objects.filter(template_id=version.template_id, status="archived", body=V1_BODY)
            .order_by("-number").first()
        )
        if previous is None:
            continue
        version.delete()
        PromptTemplateVersion.objects.filter(pk=previous.pk).update(status="approved")


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0014_job_cancelled_status"),
    ]

    operations = [migrations.RunPython(add_history, remove_history)]
