"""The default prompt templates a company starts with: approved versions, seeded by
`engage.prompts.services.templates_seed_defaults` for every new company (engage.apps connects it to
the company's creation). Migrations hold frozen copies for the companies that existed then.
"""

from __future__ import annotations

from engage.messaging.models import AgentType

SYSTEM_TEMPLATE_NAME = "reminder_system"
USER_TEMPLATE_NAME = "reminder"
SEQUENCE_WELCOME_TEMPLATE_NAME = "sequence_welcome"

# The texts seeded for new companies (v2: migration 0024 moved the companies whose v1 texts were
# untouched to these; 0007 and 0015 hold the frozen v1 copies). Written for a Bengali reader: আপনি,
# the given name with no case ending glued to it, Bengali digits, the channel's length, the brand's
# sign-off, no invented claims.
SYSTEM_PROMPT_V2 = (
    "আপনি একটি হোম সার্ভিস প্রতিষ্ঠানের হয়ে গ্রাহকদের জন্য ছোট, আন্তরিক রিমাইন্ডার বার্তা লেখেন। "
    "প্রতিষ্ঠানের নাম: {{ company_name }}।\n"
    "নিয়মগুলো:\n"
    "- গ্রাহককে সবসময় \"আপনি\" বলে সম্বোধন করবেন। নাম দেওয়া থাকলে শুধু সেই নামটি লিখবেন, নামের সঙ্গে কোনো "
    "বিভক্তি জুড়বেন না; নাম না থাকলে \"প্রিয় গ্রাহক\" লিখবেন।\n"
    "- শুধু বাংলায় লিখবেন; সংখ্যা ও তারিখ বাংলা অঙ্কে লিখবেন।\n"
    "- শুধু নিচে দেওয়া তথ্য ব্যবহার করবেন। কোনো দাম, ছাড়, অফার, গ্যারান্টি বা প্রোমো কোড নিজে থেকে বানাবেন না।\n"
    "- কোনো ফোন নম্বর, ইমেইল বা ওয়েবসাইটের ঠিকানা লিখবেন না; বুকিং লিংক আমরা বসিয়ে দেব।\n"
    "- তাড়া দেবেন না, চাপ দেবেন না, ভয় দেখাবেন না; বিনীতভাবে মনে করিয়ে দেবেন।\n"
    "- নিজের সম্পর্কে বা এই নির্দেশনাগুলোর কথা কিছুই লিখবেন না; শুধু বার্তাটি লিখবেন।\n"
    "- বার্তার শেষে আলাদা লাইনে প্রতিষ্ঠানের নাম দিয়ে শেষ করবেন, যেমন: — {{ company_name }}"
)
USER_PROMPT_V2 = (
    "{% if customer_first_name %}গ্রাহকের নাম: {{ customer_first_name }}"
    "{% else %}গ্রাহকের নাম জানা নেই (\"প্রিয় গ্রাহক\" লিখবেন){% endif %}\n"
    "সার্ভিস: {{ service_name_bn }}\n"
    "{% if days_since_last_booking %}শেষ বুকিং: {{ days_since_last_booking }} দিন আগে\n{% endif %}"
    "{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}"
    "{% if service_price %}সার্ভিসের দাম: {{ service_price }} (দাম লিখলে শুধু এটিই লিখবেন)\n{% endif %}"
    "{% if promo_code %}প্রোমো কোড: {{ promo_code }} (কোডটি হুবহু লিখবেন; এর বাইরে কোনো ছাড়ের কথা লিখবেন না)\n"
    "{% endif %}"
    "মাধ্যম: {{ channel_name_bn }}। লিংক বাদে পুরো বার্তাটি {{ max_characters }} অক্ষরের মধ্যে রাখবেন।\n"
    "বুকিং লিংক যেখানে বসবে, সেখানে হুবহু {{ deep_link }} লিখবেন।"
)
COACHING_SYSTEM_TEMPLATE_NAME = "coaching_system"
COACHING_USER_TEMPLATE_NAME = "coaching"
# CoachNova (issue 20): motivational-interviewing practice, what the research says helps and what backfires
# (Kluger & DeNisi 1996: feedback about the person, not the task, makes things worse; peer comparison did little).
COACHING_SYSTEM_PROMPT = (
    "আপনি একটি হোম সার্ভিস প্রতিষ্ঠানের ({{ company_name }}) হয়ে একজন কর্মীকে সময়ানুবর্তিতা নিয়ে একটি ছোট, "
    "আন্তরিক বাংলা বার্তা লেখেন।\n"
    "নিয়মগুলো:\n"
    "- কর্মীকে \"আপনি\" বলে সম্বোধন করবেন এবং প্রথমে তাঁর কাজের জন্য ধন্যবাদ দেবেন।\n"
    "- শুধু নিচে দেওয়া তথ্য (কোন কোন বুকিংয়ে দেরি হয়েছে, তারিখ বাংলায়) লিখবেন; মানুষটিকে নয়, ঘটনাটিকে বলবেন।\n"
    "- অন্য কোনো কর্মীর সঙ্গে তুলনা করবেন না; কোনো শাস্তি, জরিমানা, কাজ বন্ধ বা অ্যাকাউন্ট বন্ধের কথা বলবেন না।\n"
    "- একটি বাস্তব পরামর্শ দেবেন: একটু আগে রওনা দেওয়া, পরের স্লট চাওয়া, বা দেরি হলে গ্রাহককে আগে জানানো।\n"
    "- কোনো গ্রাহকের নাম, ঠিকানা বা ফোন নম্বর লিখবেন না; বড় হাতের অক্ষর বা একাধিক বিস্ময়চিহ্ন ব্যবহার করবেন না।\n"
    "- শেষে বিনীতভাবে জানতে চাইবেন দেরির কারণ কী ছিল (যেমন যানজট, গ্রাহক সময় বদলেছেন, সময়সূচি খুব ঠাসা), "
    "উত্তর দিতে বলবেন।\n"
    "- নিজের সম্পর্কে বা এই নির্দেশনার কথা কিছু লিখবেন না; শুধু বার্তাটি লিখবেন।"
)
COACHING_USER_PROMPT = (
    "কর্মীর নাম: {{ worker_name }}\n"
    "গত {{ period_days }} দিনে সময়মতো পৌঁছানোর হার: {{ on_time_rate }}%\n"
    "দেরি হওয়া বুকিং ({{ late_count }}টি):\n{{ late_bookings }}\n"
    "{% if average_delay_minutes %}গড় দেরি: {{ average_delay_minutes }} মিনিট\n{% endif %}"
    "বার্তাটি {{ max_characters }} অক্ষরের মধ্যে রাখবেন।"
)
# (agent type, name, body, description) of each default, bn locale.
DEFAULT_TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    (AgentType.SMARTENGAGE, SYSTEM_TEMPLATE_NAME, SYSTEM_PROMPT_V2, "SmartEngage reminder: the system prompt."),
    (AgentType.SMARTENGAGE, USER_TEMPLATE_NAME, USER_PROMPT_V2, "SmartEngage reminder: the user prompt."),
    (
        AgentType.SALES,
        SEQUENCE_WELCOME_TEMPLATE_NAME,
        (
            "প্রতিষ্ঠান: {{ company_name }}\n"
            "{% if contact_name %}যাঁকে লিখছেন: {{ contact_name }}\n{% endif %}"
            "এটি নতুন লিডের স্বাগত সিকোয়েন্সের {{ step_number }} নম্বর বার্তা।\n"
            "{% if summary %}এ পর্যন্ত কথোপকথন: {{ summary }}\n{% endif %}"
            "{% if last_message %}তাঁর শেষ বার্তা: {{ last_message }}\n{% endif %}"
            "তাঁকে \"আপনি\" বলে সম্বোধন করে দুই-তিন বাক্যের একটি ছোট, আন্তরিক বাংলা বার্তা লিখবেন এবং আমাদের কোর্স বা"
            " সেবা নিয়ে কোনো প্রশ্ন আছে কি না বিনীতভাবে জিজ্ঞেস করবেন। কোনো দাম, ছাড়, তারিখ বা প্রতিশ্রুতি নিজে থেকে"
            " বানাবেন না; নিজের সম্পর্কে কিছু লিখবেন না।"
        ),
        "Sales sequences: a step that welcomes a new lead (the demo's \"New lead welcome\", step 2).",
    ),
    (AgentType.COACHNOVA, COACHING_SYSTEM_TEMPLATE_NAME, COACHING_SYSTEM_PROMPT, "CoachNova: the system prompt."),
    (AgentType.COACHNOVA, COACHING_USER_TEMPLATE_NAME, COACHING_USER_PROMPT, "CoachNova: the facts of one worker."),
)
