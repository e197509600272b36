"""Seed the approved sales welcome template (bn) for every existing company.

Companies created from now on get it with the other defaults (`templates_seed_defaults`, connected to
a company's creation in engage.apps); this migration keeps its own frozen copy of the text.
"""

from django.db import migrations
from django.utils import timezone

NAME = "sequence_welcome"
DESCRIPTION = "Sales sequences: a step that welcomes a new lead (the demo's \"New lead welcome\", step 2)."
BODY = (
    "প্রতিষ্ঠান: {{ company_name }}\n"
    "{% if contact_name %}যাঁকে লিখছেন: {{ contact_name }}\n{% endif %}"
    "এটি নতুন লিডের স্বাগত সিকোয়েন্সের {{ step_number }} নম্বর বার্তা।\n"
    "{% if summary %}এ পর্যন্ত কথোপকথন: {{ summary }}\n{% endif %}"
    "{% if last_message %}তাঁর শেষ বার্তা: {{ last_message }}\n{% endif %}"
    "তাঁকে \"আপনি\" বলে সম্বোধন করে দুই-তিন বাক্যের একটি ছোট, আন্তরিক বাংলা বার্তা লিখবেন এবং আমাদের কোর্স বা"
    " সেবা নিয়ে কোনো প্রশ্ন আছে কি না বিনীতভাবে জিজ্ঞেস করবেন। কোনো দাম, ছাড়, তারিখ বা প্রতিশ্রুতি নিজে থেকে"
    " বানাবেন না; নিজের সম্পর্কে কিছু লিখবেন না।"
)


def seed(apps, schema_editor):
    Company = apps.get_model("crm", "Company")
    PromptTemplate = apps.get_model("engage", "PromptTemplate")
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    now = timezone.now()
    for company in Company.objects.all().iterator():
        template, _ = PromptTemplate.objects.get_or_create(
            company=company, agent_type="sales", locale="bn", name=NAME, defaults={"description": DESCRIPTION}
        )
        if not PromptTemplateVersion.objects.filter(template=template).exists():
            PromptTemplateVersion.objects.create(template=template, number=1, body=BODY, status="approved", approved_at=now)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("engage", "0025_smartengage_reminder_v2"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
