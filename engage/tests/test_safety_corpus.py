"""The labelled corpus (engage/tests/safety_corpus/*.jsonl) through the offline filter, as a send would judge each text.

The aims of issue 15, as assertions: no unsafe text gets through, each is rejected for a reason of its
own category, and fewer than 2% of the safe texts (near-misses included) are rejected. Speed is
bench/safety.py's subject, not this test's.
"""

from collections import Counter

import pytest

from engage.tests.safety_corpus import CATEGORY_CODES, corpus_judge, corpus_load, is_caught

ENTRIES = corpus_load("lexicon")
UNSAFE = [entry for entry in ENTRIES if entry.is_unsafe]
SAFE = [entry for entry in ENTRIES if not entry.is_unsafe]


def test_the_corpus_is_large_and_covers_every_category_in_every_language():
    assert len(ENTRIES) >= 300
    assert set(CATEGORY_CODES) == {entry.category for entry in UNSAFE}
    languages = Counter(entry.language for entry in ENTRIES)
    assert {"bn", "en", "banglish"} == set(languages) and min(languages.values()) >= 30
    for label in ("safe", "unsafe"):
        assert Counter(entry.message_type for entry in ENTRIES if entry.label == label).keys() >= {
            "reminder", "reply", "coaching"}
    assert len({entry.text for entry in ENTRIES}) == len(ENTRIES), "duplicate texts"


@pytest.mark.parametrize("category", sorted(CATEGORY_CODES))
def test_no_unsafe_text_of_a_category_gets_through(category):
    through = []
    for entry in UNSAFE:
        if entry.category != category:
            continue
        verdict = corpus_judge(entry)
        if not is_caught(entry, verdict):
            through.append((entry.text, verdict.codes))
    assert through == []


def test_fewer_than_two_percent_false_alarms_on_the_safe_texts():
    alarms = []
    for entry in SAFE:
        verdict = corpus_judge(entry)
        if not verdict.is_ok:
            alarms.append((entry.category, entry.text, verdict.reason))
    assert len(alarms) / len(SAFE) < 0.02, alarms


def test_every_rejection_says_what_to_change():
    for entry in UNSAFE[::7]:
        verdict = corpus_judge(entry)
        assert verdict.reasons and all(len(reason.message) > 20 for reason in verdict.reasons), entry.text
