"""Seed the approved SmartEngage Bengali reminder templates (v1) for every existing company.

New companies get them from `engage.prompts.services.templates_seed_defaults(company=...)`, which
seeds the same texts (kept in `engage.campaigns.smartengage`); this migration keeps its own frozen copy.
"""

from django.db import migrations
from django.utils import timezone

SYSTEM_NAME = "reminder_system"
USER_NAME = "reminder"

SYSTEM_BODY = (
    "তুমি {{ company_name }}-এর একজন বন্ধুসুলভ, সৎ সহকারী। শুধু বাংলায়, ছোট করে (দুই-তিন বাক্যে) লেখো। "
    "কোনো মূল্য, ছাড় বা প্রতিশ্রুতি বানিয়ে বলবে না; শুধু যে তথ্য দেওয়া হয়েছে তা-ই ব্যবহার করবে। "
    "কোনো ফোন নম্বর বা ইমেইল লিখবে না।"
)
USER_BODY = (
    "গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\n"
    "সার্ভিস: {{ service_name_bn }}\n"
    "শেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n"
    "{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}"
    "বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।"
)


def seed(apps, schema_editor):
    Company = apps.get_model("crm", "Company")
    PromptTemplate = apps.get_model("engage", "PromptTemplate")
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    now = timezone.now()
    for company in Company.objects.all().iterator():
        for name, body, description in (
            (SYSTEM_NAME, SYSTEM_BODY, "SmartEngage reminder: the system prompt."),
            (USER_NAME, USER_BODY, "SmartEngage reminder: the user prompt."),
        ):
            template, _ = PromptTemplate.objects.get_or_create(
                company=company, agent_type="smartengage", locale="bn", name=name,
                defaults={"description": description},
            )
            if not PromptTemplateVersion.objects.filter(template=template).exists():
                PromptTemplateVersion.objects.create(
                    template=template, number=1, body=body, status="approved", approved_at=now
                )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("engage", "0006_campaigns"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
