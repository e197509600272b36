"""Knowledge-base full-text search (PostgreSQL, `simple` configuration, kept current by a trigger)."""

import pytest

from engage.ai.knowledge import knowledge_search
from engage.models import KnowledgeDoc

pytestmark = pytest.mark.django_db


def titles(documents):
    return [document.title for document in documents]


@pytest.fixture
def documents(company, other_company):
    return [
        KnowledgeDoc.objects.create(company=company, title="Digital marketing course",
                                    body="Three months, online, weekend classes.", tags=["course", "marketing"]),
        KnowledgeDoc.objects.create(company=company, title="Prices", body="The digital marketing course costs 5000 taka.",
                                    tags=["pricing"]),
        KnowledgeDoc.objects.create(company=company, title="Refunds", body="Full refund within 7 days.", tags=[]),
        KnowledgeDoc.objects.create(company=company, title="কোর্সের দাম", body="ডিজিটাল মার্কেটিং কোর্সের দাম ৫০০০ টাকা।",
                                    tags=["দাম"]),
        KnowledgeDoc.objects.create(company=company, title="Old course", body="Digital marketing 2019 edition.",
                                    is_active=False),
        KnowledgeDoc.objects.create(company=other_company, title="Beta digital marketing",
                                    body="digital marketing course price"),
    ]


def test_an_english_question_finds_the_best_passages_first(documents, company):
    found = knowledge_search(company=company, text="How much does the digital marketing course cost?")
    assert set(titles(found)[:2]) == {"Prices", "Digital marketing course"}
    assert "Refunds" not in titles(found)


def test_a_bengali_question_finds_bengali_passages(documents, company):
    assert titles(knowledge_search(company=company, text="কোর্সের দাম কত?")) == ["কোর্সের দাম"]


def test_at_most_three_and_never_another_companys_or_inactive_ones(documents, company):
    found = knowledge_search(company=company, text="digital marketing course refund prices কোর্সের")
    assert len(found) == 3
    assert {document.company_id for document in found} == {company.pk}
    assert "Old course" not in titles(found)


def test_tags_are_searchable(documents, company):
    assert titles(knowledge_search(company=company, text="pricing")) == ["Prices"]


def test_the_trigger_keeps_the_vector_current_on_edit_and_bulk_insert(documents, company):
    refunds = documents[2]
    refunds.body = "Full refund within 7 days, also for installments."
    refunds.save()
    KnowledgeDoc.objects.bulk_create([KnowledgeDoc(company=company, title="Certificates", body="Printed certificate.")])

    assert titles(knowledge_search(company=company, text="installments")) == ["Refunds"]
    assert titles(knowledge_search(company=company, text="certificate")) == ["Certificates"]


def test_punctuation_and_query_syntax_in_user_text_never_fail(documents, company):
    assert knowledge_search(company=company, text='"" OR -- !!! ((') == []
    assert knowledge_search(company=company, text="") == []


def test_passages_come_best_ranked_first_not_newest_first(company):
    # given: the best match is the oldest document and the weakest the newest
    best = KnowledgeDoc.objects.create(company=company, title="AC servicing price",
                                       body="AC servicing costs 1500 taka; gas refill is extra.")
    middle = KnowledgeDoc.objects.create(company=company, title="Booking", body="Book AC servicing in the app.")
    weakest = KnowledgeDoc.objects.create(company=company, title="Opening hours", body="Price questions: 9 to 9.")
    KnowledgeDoc.objects.create(company=company, title="Refunds", body="Full refund within 7 days.")

    found = knowledge_search(company=company, text="What is the price of AC servicing?")

    assert [document.pk for document in found] == [best.pk, middle.pk, weakest.pk]
