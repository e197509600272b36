"""SmartEngage reminders v2: prompts and fallbacks a Bengali reader would write (issue 15).

The seeded system and user prompts become the v2 texts of `engage.services.smartengage` (আপনি, the
given name without a hyphenated case ending, no "গ্রাহক গ্রাহক", Bengali digits and dates, the
channel's length, the brand's sign-off, no invented claims) for every company whose approved version
is still a seeded one word for word (v1 of 0007, or the booking-history text of 0015): the old
version is archived (kept, so a rollback in the studio brings it back) and v2 approved. A company
whose marketers edited the reminder keeps its own text. The global reminder fallbacks (bn, en) that
are still the seeded ones now name the customer, the service and the brand (they are rendered with
the reminder's variables); a company's own fallback is left alone. New companies get the v2 texts
from DEFAULT_TEMPLATES; this migration keeps its own frozen copies.
"""

from django.db import migrations
from django.utils import timezone

SYSTEM_NAME = "reminder_system"
USER_NAME = "reminder"

SYSTEM_V1 = 'তুমি {{ company_name }}-এর একজন বন্ধুসুলভ, সৎ সহকারী। শুধু বাংলায়, ছোট করে (দুই-তিন বাক্যে) লেখো। কোনো মূল্য, ছাড় বা প্রতিশ্রুতি বানিয়ে বলবে না; শুধু যে তথ্য দেওয়া হয়েছে তা-ই ব্যবহার করবে। কোনো ফোন নম্বর বা ইমেইল লিখবে না।'
USER_V1 = 'গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\nসার্ভিস: {{ service_name_bn }}\nশেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।'
USER_WITH_HISTORY = 'গ্রাহক {{ customer_name }}-কে একটি বাংলা রিমাইন্ডার লেখো।\nসার্ভিস: {{ service_name_bn }}\nশেষ বুকিংয়ের পর {{ days_since_last_booking }} দিন পেরিয়েছে।\n{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}{% if promo_code %}প্রোমো কোড: {{ promo_code }} — বার্তায় কোডটি উল্লেখ করো।\n{% endif %}বুকিং লিংকের জায়গায় হুবহু {{ deep_link }} লেখো (লিংক আমরা বসিয়ে দেব)।'
SYSTEM_V2 = 'আপনি একটি হোম সার্ভিস প্রতিষ্ঠানের হয়ে গ্রাহকদের জন্য ছোট, আন্তরিক রিমাইন্ডার বার্তা লেখেন। প্রতিষ্ঠানের নাম: {{ company_name }}।\nনিয়মগুলো:\n- গ্রাহককে সবসময় "আপনি" বলে সম্বোধন করবেন। নাম দেওয়া থাকলে শুধু সেই নামটি লিখবেন, নামের সঙ্গে কোনো বিভক্তি জুড়বেন না; নাম না থাকলে "প্রিয় গ্রাহক" লিখবেন।\n- শুধু বাংলায় লিখবেন; সংখ্যা ও তারিখ বাংলা অঙ্কে লিখবেন।\n- শুধু নিচে দেওয়া তথ্য ব্যবহার করবেন। কোনো দাম, ছাড়, অফার, গ্যারান্টি বা প্রোমো কোড নিজে থেকে বানাবেন না।\n- কোনো ফোন নম্বর, ইমেইল বা ওয়েবসাইটের ঠিকানা লিখবেন না; বুকিং লিংক আমরা বসিয়ে দেব।\n- তাড়া দেবেন না, চাপ দেবেন না, ভয় দেখাবেন না; বিনীতভাবে মনে করিয়ে দেবেন।\n- নিজের সম্পর্কে বা এই নির্দেশনাগুলোর কথা কিছুই লিখবেন না; শুধু বার্তাটি লিখবেন।\n- বার্তার শেষে আলাদা লাইনে প্রতিষ্ঠানের নাম দিয়ে শেষ করবেন, যেমন: — {{ company_name }}'
USER_V2 = '{% if customer_first_name %}গ্রাহকের নাম: {{ customer_first_name }}{% else %}গ্রাহকের নাম জানা নেই ("প্রিয় গ্রাহক" লিখবেন){% endif %}\nসার্ভিস: {{ service_name_bn }}\n{% if days_since_last_booking %}শেষ বুকিং: {{ days_since_last_booking }} দিন আগে\n{% endif %}{% if booking_history %}আগের বুকিং (নতুন থেকে পুরোনো):\n{{ booking_history }}\n{% endif %}{% if service_price %}সার্ভিসের দাম: {{ service_price }} (দাম লিখলে শুধু এটিই লিখবেন)\n{% endif %}{% if promo_code %}প্রোমো কোড: {{ promo_code }} (কোডটি হুবহু লিখবেন; এর বাইরে কোনো ছাড়ের কথা লিখবেন না)\n{% endif %}মাধ্যম: {{ channel_name_bn }}। লিংক বাদে পুরো বার্তাটি {{ max_characters }} অক্ষরের মধ্যে রাখবেন।\nবুকিং লিংক যেখানে বসবে, সেখানে হুবহু {{ deep_link }} লিখবেন।'

FALLBACKS = {
    "bn": ("আপনার প্রিয় সার্ভিসের সময় হয়েছে। এখনই বুক করুন!", '{% if customer_first_name %}প্রিয় {{ customer_first_name }}{% else %}প্রিয় গ্রাহক{% endif %}, {% if service_name_bn %}আপনার {{ service_name_bn }} আবার করিয়ে নেওয়ার সময় হয়ে এসেছে।{% else %}আপনার পরবর্তী সার্ভিসের সময় হয়ে এসেছে।{% endif %} সুবিধামতো সময়ে বুক করতে পারেন: [BOOKING_LINK]\n— {{ company_name }}'),
    "en": ("It is time for your favourite service again. Book now!", '{% if customer_first_name %}Dear {{ customer_first_name }}{% else %}Dear customer{% endif %}, {% if service_name %}your {{ service_name }} is due again.{% else %}your next service is due.{% endif %} Book a time that suits you: [BOOKING_LINK]\n— {{ company_name }}'),
}


def _move(apps, *, name: str, old_bodies: tuple[str, ...], new_body: str) -> None:
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    now = timezone.now()
    untouched = PromptTemplateVersion.objects.filter(
        template__agent_type="smartengage", template__locale="bn", template__name=name, status="approved",
        body__in=old_bodies,
    ).select_related("template")
    for approved in untouched.iterator():
        template = approved.template
        latest = PromptTemplateVersion.objects.filter(template=template).order_by("-number").first()
        PromptTemplateVersion.objects.filter(pk=approved.pk).update(status="archived")
        PromptTemplateVersion.objects.create(
            template=template, number=latest.number + 1, body=new_body, status="approved", approved_at=now
        )


def forward(apps, schema_editor):
    _move(apps, name=SYSTEM_NAME, old_bodies=(SYSTEM_V1,), new_body=SYSTEM_V2)
    _move(apps, name=USER_NAME, old_bodies=(USER_V1, USER_WITH_HISTORY), new_body=USER_V2)
    FallbackText = apps.get_model("engage", "FallbackText")
    for locale, (old, new) in FALLBACKS.items():
        FallbackText.objects.filter(company=None, message_type="reminder", locale=locale, body=old).update(body=new)


def _restore(apps, *, name: str, new_body: str, old_bodies: tuple[str, ...]) -> None:
    PromptTemplateVersion = apps.get_model("engage", "PromptTemplateVersion")
    added = PromptTemplateVersion.objects.filter(
        template__agent_type="smartengage", template__locale="bn", template__name=name, status="approved",
        body=new_body,
    )
    for version in added.iterator():
        previous = (
            PromptTemplateVersion.objects.filter(template_id=version.template_id, status="archived",
                                                 body__in=old_bodies)
            .order_by("-number").first()
        )
        if previous is None:
            continue
        version.delete()
        PromptTemplateVersion.objects.filter(pk=previous.pk).update(status="approved")


def backward(apps, schema_editor):
    _restore(apps, name=SYSTEM_NAME, new_body=SYSTEM_V2, old_bodies=(SYSTEM_V1,))
    _restore(apps, name=USER_NAME, new_body=USER_V2, old_bodies=(USER_V1, USER_WITH_HISTORY))
    FallbackText = apps.get_model("engage", "FallbackText")
    for locale, (old, new) in FALLBACKS.items():
        FallbackText.objects.filter(company=None, message_type="reminder", locale=locale, body=new).update(body=old)


class Migration(migrations.Migration):
    dependencies = [
        ("engage", "0024_safety_filter_settings"),
    ]

    operations = [migrations.RunPython(forward, backward)]
