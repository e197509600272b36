"""Knowledge-base search: PostgreSQL full-text search over KnowledgeDoc, ranked."""

from __future__ import annotations

import re

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL

from crm.models import Company
from engage.ai.models import KnowledgeDoc

# \w alone splits Indic words at their vowel signs (combining marks): take the Indic blocks whole.
WORD_PATTERN = re.compile(r"[\w\u0900-\u0dff]+")
MAX_QUERY_WORDS = 30


def knowledge_exists(table: str) -> RawSQL:
    """An expression for a query of `table` (a model's table with a `company_id` column, keeping its own name):
    whether the row's company has an active document. Written as SQL: the ORM's `Exists(...)` subquery cost
    ~0.5 ms of CPU to build and compile on every reply."""
    return RawSQL(
        f'EXISTS (SELECT 1 FROM "{KnowledgeDoc._meta.db_table}" k WHERE k."company_id" = "{table}"."company_id"'
        ' AND k."is_active")', [], output_field=BooleanField(),
    )


def knowledge_search(*, company: Company, text: str, limit: int = 3) -> list[KnowledgeDoc]:
    """The company's active documents that best match `text`, best first.

    Any word may match (an inbound message is a sentence, not a query), and documents matching
    more and rarer words, in the title first, rank higher. Uses the `simple` configuration, so
    Bengali and English both work.
    """
    words = list(dict.fromkeys(word.lower() for word in WORD_PATTERN.findall(text)))[:MAX_QUERY_WORDS]
    if not words:
        return []
    documents = KnowledgeDoc.objects.filter(company=company, is_active=True)
    if connection.vendor != "postgresql":
        # Embedded SQLite mode: no full-text search; a plain word match keeps it working.
        condition = Q()
        for word in words:
            condition |= Q(title__icontains=word) | Q(body__icontains=word)
        return list(documents.filter(condition)[:limit])
    # websearch syntax: "a or b or c" is the OR of the words; it never raises on user text.
    query = SearchQuery(" or ".join(words), search_type="websearch", config="simple")
    return list(
        documents.filter(search_vector=query)
        .annotate(rank=SearchRank(F("search_vector"), query))
        .order_by("-rank", "-updated_at")[:limit]
    )
