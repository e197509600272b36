"""The labelled corpus (engage/tests/safety_corpus/) through the offline filter, as a send would judge each text.

The aims of issue 15, as assertions, on each of the two groups apart: the texts written with the word
lists (`lexicon`) and the set written blind (`independent`): no unsafe text gets through, each is
rejected for a reason of its own category, and fewer than 2% of the safe texts (near-misses included)
are rejected. Speed is bench/safety.py's subject, not this test's.
"""

from collections import Counter

import pytest

from engage.tests.safety_corpus import CATEGORY_CODES, GROUP_CATEGORIES, GROUPS, corpus_judge, corpus_load, is_caught

ENTRIES = {group: corpus_load(group) for group in GROUPS}
MINIMUM_SIZE = {"lexicon": 300, "independent": 250}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_corpus_is_large_and_covers_every_category_in_every_language(group):
    entries = ENTRIES[group]
    assert len(entries) >= MINIMUM_SIZE[group]
    assert GROUP_CATEGORIES[group] == {entry.category for entry in entries if entry.is_unsafe}
    languages = Counter(entry.language for entry in entries)
    assert {"bn", "en", "banglish"} == set(languages) and min(languages.values()) >= 30
    for label in ("safe", "unsafe"):
        assert Counter(entry.message_type for entry in entries if entry.label == label).keys() >= {
            "reminder", "reply", "coaching"}
    assert len({entry.text for entry in entries}) == len(entries), "duplicate texts"


@pytest.mark.parametrize("group", sorted(GROUPS))
@pytest.mark.parametrize("category", sorted(CATEGORY_CODES))
def test_no_unsafe_text_of_a_category_gets_through(group, category):
    through = []
    for entry in ENTRIES[group]:
        if not entry.is_unsafe or entry.category != category:
            continue
        verdict = corpus_judge(entry)
        if not is_caught(entry, verdict):
            through.append((entry.text, verdict.codes))
    assert through == []


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_fewer_than_two_percent_false_alarms_on_the_safe_texts(group):
    safe = [entry for entry in ENTRIES[group] if not entry.is_unsafe]
    alarms = []
    for entry in safe:
        verdict = corpus_judge(entry)
        if not verdict.is_ok:
            alarms.append((entry.category, entry.text, verdict.reason))
    assert len(alarms) / len(safe) < 0.02, alarms


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_rejection_says_what_to_change(group):
    for entry in [entry for entry in ENTRIES[group] if entry.is_unsafe][::7]:
        verdict = corpus_judge(entry)
        assert verdict.reasons and all(len(reason.message) > 20 for reason in verdict.reasons), entry.text
