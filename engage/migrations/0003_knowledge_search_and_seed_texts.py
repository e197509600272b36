"""KnowledgeDoc full-text search (trigger + GIN index, PostgreSQL only), and the seeded safety texts.

The search vector uses the `simple` configuration so Bengali and English both tokenise without
stemming; title weighs most, then tags, then body. A trigger keeps it current on every write,
bulk ones included. SQLite (the embedded `make run` mode) gets neither and searches with LIKE.
"""

from django.db import migrations

CREATE_SQL = """
CREATE OR REPLACE FUNCTION engage_knowledgedoc_search_vector() RETURNS trigger AS $$
BEGIN
  NEW.search_vector :=
    setweight(to_tsvector('simple', coalesce(NEW.title, '')), 'A') ||
    setweight(to_tsvector('simple', coalesce((
      SELECT string_agg(tag, ' ') FROM jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(NEW.tags) = 'array' THEN NEW.tags ELSE '[]'::jsonb END) AS tag), '')), 'B') ||
    setweight(to_tsvector('simple', coalesce(NEW.body, '')), 'C');
  RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER engage_knowledgedoc_search_vector_update
  BEFORE INSERT OR UPDATE ON engage_knowledgedoc
  FOR EACH ROW EXECUTE FUNCTION engage_knowledgedoc_search_vector();
CREATE INDEX engage_knowledgedoc_search ON engage_knowledgedoc USING gin (search_vector);
UPDATE engage_knowledgedoc SET title = title;
"""

DROP_SQL = """
DROP INDEX IF EXISTS engage_knowledgedoc_search;
DROP TRIGGER IF EXISTS engage_knowledgedoc_search_vector_update ON engage_knowledgedoc;
DROP FUNCTION IF EXISTS engage_knowledgedoc_search_vector();
"""


def create_search(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL)


def drop_search(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


FALLBACK_TEXTS = {
    ("reply", "bn"): "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।",
    ("reply", "en"): "Thank you, we have received your message. One of our team will get back to you shortly.",
    ("followup", "bn"): "আপনার কোনো প্রশ্ন থাকলে আমাদের জানান, আমরা সাহায্য করতে প্রস্তুত।",
    ("followup", "en"): "Just checking in: if you have any questions, reply here and we will be glad to help.",
    ("sequence_step", "bn"): "আমাদের সাথে থাকার জন্য ধন্যবাদ। কোনো প্রশ্ন থাকলে জানাবেন।",
    ("sequence_step", "en"): "Thanks for staying in touch. Let us know if you have any questions.",
    ("reminder", "bn"): "আপনার প্রিয় সার্ভিসের সময় হয়েছে। এখনই বুক করুন!",
    ("reminder", "en"): "It is time for your favourite service again. Book now!",
    ("coaching", "bn"): "আপনার কাজের জন্য ধন্যবাদ। সময়মতো পৌঁছালে গ্রাহকের আস্থা বাড়ে।",
    ("coaching", "en"): "Thank you for your work. Arriving on time builds customers' trust.",
}

BANNED_PHRASES = [
    "guaranteed results",
    "100% guaranteed",
    "risk-free",
    "act now or lose",
    "১০০% গ্যারান্টি",
]


def seed_texts(apps, schema_editor):
    FallbackText = apps.get_model("engage", "FallbackText")
    BannedPhrase = apps.get_model("engage", "BannedPhrase")
    for (message_type, locale), body in FALLBACK_TEXTS.items():
        if not FallbackText.objects.filter(company=None, message_type=message_type, locale=locale).exists():
            FallbackText.objects.create(company=None, message_type=message_type, locale=locale, body=body)
    for phrase in BANNED_PHRASES:
        if not BannedPhrase.objects.filter(company=None, phrase=phrase).exists():
            BannedPhrase.objects.create(company=None, phrase=phrase, note="seeded default")


def unseed_texts(apps, schema_editor):
    apps.get_model("engage", "FallbackText").objects.filter(company=None).delete()
    apps.get_model("engage", "BannedPhrase").objects.filter(company=None, note="seeded default").delete()


class Migration(migrations.Migration):
    dependencies = [("engage", "0002_ai_templates_sequences")]

    operations = [
        migrations.RunPython(create_search, drop_search),
        migrations.RunPython(seed_texts, unseed_texts),
    ]
