"""The default prompt templates a company starts with: approved v1 versions, seeded by
`engage.prompts.services.templates_seed_defaults` for every new company (engage.apps connects it to
the company's creation). Migrations 0007 (the reminder) and 0023 (the sales welcome) hold frozen
copies for the companies that existed then.
"""

from __future__ import annotations

from engage.messaging.models import AgentType

SYSTEM_TEMPLATE_NAME = "reminder_system"
USER_TEMPLATE_NAME = "reminder"
SEQUENCE_WELCOME_TEMPLATE_NAME = "sequence_welcome"

# (agent type, name, body, description) of each default, bn locale.
DEFAULT_TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (
        AgentType.SMARTENGAGE,
        SYSTEM_TEMPLATE_NAME,
        (
            "তুমি {{ company_name }}-এর একজন বন্ধুসুলভ, সৎ সহকারী। শুধু বাংলায়, ছোট করে (দুই-তিন বাক্যে) লেখো। "
            "কোনো মূল্য, ছাড় বা প্রতিশ্রুতি বানিয়ে বলবে না; শুধু যে তথ্য দেওয়া হয়েছে তা-ই ব্যবহার করবে। "
            "কোনো ফোন নম্বর বা ইমেইল লিখবে না।"
        ),
        "SmartEngage reminder: the system prompt.",
    ),
    (
        AgentType.SMARTENGAGE,
        USER_TEMPLATE_NAME,
        (
            "গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\n"
            "সার্ভিস: {{ service_name_bn }}\n"
            "শেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n"
            "{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}"
            "{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}"
            "বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।"
        ),
        "SmartEngage reminder: the user prompt.",
    ),
    (
        AgentType.SALES,
        SEQUENCE_WELCOME_TEMPLATE_NAME,
        (
            "{{ company_name }}-এর পক্ষ থেকে {{ contact_name }}-কে একটি ছোট, বন্ধুসুলভ বাংলা বার্তা লেখো"
            " (দুই-তিন বাক্যে)। এটি নতুন লিডের স্বাগত সিকোয়েন্সের {{ step_number }} নম্বর বার্তা।\n"
            "{% if summary %}এ পর্যন্ত কথোপকথন: {{ summary }}\n{% endif %}"
            "{% if last_message %}তাঁর শেষ বার্তা: {{ last_message }}\n{% endif %}"
            "আমাদের কোর্স বা সেবা নিয়ে কোনো প্রশ্ন আছে কি না জিজ্ঞেস করো। কোনো মূল্য, ছাড় বা তারিখ বানিয়ে বলবে না।"
        ),
        "Sales sequences: a step that welcomes a new lead (the demo's \"New lead welcome\", step 2).",
    ),
)
