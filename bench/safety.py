"""The safety filter on the labelled corpus: precision, recall and false alarms per category, and its speed.

    .venv/bin/python bench/run_all.py safety      # (or `make bench`) writes its section of docs/benchmarks.md

Every text of the corpus is judged offline exactly as a send would judge it
(`engage.tests.safety_corpus.corpus_judge`: the draft before our link, the final text after), and its two
groups are reported apart: `lexicon` (engage/tests/safety_corpus/*.jsonl, written with the word lists)
and `independent` (engage/tests/safety_corpus/independent/*.jsonl, written blind). Per unsafe
category: recall (share of its texts rejected for a reason of that category) and precision (of
the texts rejected for a reason of that category, the share that are unsafe); over the safe texts:
the false-alarm rate. Speed: milliseconds of CPU time per text (the wall clock mean beside it) with the text caches emptied before each pass (each
text judged cold; the prompt's instructions stay cached, as one system prompt serves every message),
mean and p95 over PASSES passes; and a campaign's approved fallback judged for
1,000 customers with different names (the content checks are cached with the name masked).
No database and no network: the module needs Django's settings only.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shokti.settings")
NAME = "safety"
PASSES = 5
CEILING_MS_PER_TEXT = 5.0  # the aim: under 5 ms per text offline
CEILING_FALLBACK_MS = 0.5
CEILING_THROUGH_PERCENT = 0.4  # under one unsafe text in 250: the aim is none
CEILING_FALSE_ALARM_PERCENT = 2.0
# The API judges texts of up to 20,000 characters from integrators: no shape of text may make a check
# backtrack (the email pattern once took 2.2 s on "a.a.a...").
CEILING_LONG_TEXT_MS = 1500.0
LONG_TEXT_SHAPES = {
    "Bengali words": "ভালো সার্ভিস ",
    "English words": "your service is due ",
    "dotted letters": "a.",
    "digits": "1 ",
    "spaced letters": "f u c k ",
    "conditions": "না দিলে ",
    "asterisks": "*a ",
    "braces": "{ ",
    "bare domains": "x.com ",
}


def _caches_clear() -> None:
    """Forget every judged text (the prompt's instructions stay: one system prompt serves every message)."""
    from engage.ai import claims, normalize, safety

    for function in (normalize.fold, normalize.fold_phrase, safety._content_reasons, safety.bengali_share,
                     claims.claims_extract):
        function.cache_clear()


def measure() -> dict:
    import django

    django.setup()
    from engage.ai.links import _extractor
    from engage.tests.safety_corpus import GROUPS, corpus_judge, corpus_load

    entries = corpus_load()
    # Load the word lists, the suffix list and the format characters once, outside the timing.
    corpus_judge(entries[0])
    _extractor()("example.com")
    verdicts = {}
    timings: list[float] = []
    walls: list[float] = []
    for _ in range(PASSES):
        _caches_clear()
        for index, entry in enumerate(entries):
            # CPU time of this thread: on 2 CPUs shared with other test suites, wall time mostly measures
            # the wait for a CPU (the wall-clock mean is reported beside it).
            started, wall = time.thread_time(), time.perf_counter()
            verdicts[index] = corpus_judge(entry)
            timings.append((time.thread_time() - started) * 1000)
            walls.append((time.perf_counter() - wall) * 1000)
    judged = [(entry, verdicts[index]) for index, entry in enumerate(entries)]
    return {
        "groups": {group: _group_result([pair for pair in judged if pair[0].group == group]) for group in GROUPS},
        "texts": len(entries),
        "ms_mean": statistics.fmean(timings), "ms_p95": statistics.quantiles(timings, n=20)[18],
        "wall_ms_mean": statistics.fmean(walls),
        "fallback_ms": _fallback_ms(),
        "long_text_ms": _long_text_ms(),
    }


def _long_text_ms() -> tuple[str, float]:
    """The slowest of LONG_TEXT_SHAPES, each repeated to 20,000 characters and judged cold (CPU ms)."""
    from engage.ai.safety import safety_check
    from engage.ai.safety_context import SafetyContext
    from engage.tests.safety_corpus import POLICY

    slowest = ("", 0.0)
    for name, unit in LONG_TEXT_SHAPES.items():
        text = (unit * (20000 // len(unit) + 1))[:20000]
        _caches_clear()
        started = time.thread_time()
        safety_check(text=text, policy=POLICY, channel="email", locale="bn",
                     context=SafetyContext(recipient_name="Rumana", message_type="reminder"))
        elapsed = (time.thread_time() - started) * 1000
        slowest = max(slowest, (name, elapsed), key=lambda item: item[1])
    return slowest


def _group_result(judged: list) -> dict:
    """Recall and precision per category, texts through and false alarms, for one group of the corpus."""
    from engage.tests.safety_corpus import CATEGORY_CODES, is_caught

    rows = []
    for category, codes in sorted(CATEGORY_CODES.items()):
        texts = [(entry, verdict) for entry, verdict in judged if entry.category == category and entry.is_unsafe]
        caught = sum(1 for entry, verdict in texts if is_caught(entry, verdict))
        flagged = [(entry, verdict) for entry, verdict in judged if set(verdict.codes) & codes]
        true_flags = sum(1 for entry, _ in flagged if entry.is_unsafe)
        rows.append({"category": category, "texts": len(texts), "caught": caught,
                     "recall": caught / len(texts) if texts else 1.0,
                     "precision": true_flags / len(flagged) if flagged else 1.0, "flagged": len(flagged)})
    safe = [(entry, verdict) for entry, verdict in judged if not entry.is_unsafe]
    unsafe = [(entry, verdict) for entry, verdict in judged if entry.is_unsafe]
    return {
        "rows": rows, "texts": len(judged), "safe": len(safe), "unsafe": len(unsafe),
        "false_alarms": sum(1 for _, verdict in safe if not verdict.is_ok),
        "through": sum(1 for _, verdict in unsafe if verdict.is_ok),
    }


def _fallback_ms() -> float:
    """One approved fallback with the link, judged for 1,000 customers of different names (a dry run)."""
    from engage.ai.safety import link_insert, safety_check
    from engage.ai.safety_context import SafetyContext
    from engage.tests.safety_corpus import BRAND, POLICY

    body = ("প্রিয় {name}, আপনার এসি সার্ভিসিং আবার করিয়ে নেওয়ার সময় হয়ে এসেছে। সুবিধামতো সময়ে বুক করতে পারেন: "
            "[BOOKING_LINK]\n— " + BRAND)
    _caches_clear()
    started = time.thread_time()
    for number in range(1000):
        name = f"গ্রাহক{number}"
        link = f"https://app.sheba.xyz/l/Ab{number:06d}"
        text = link_insert(text=body.format(name=name), link=link)
        verdict = safety_check(text=text, policy=POLICY, channel="sms", locale="bn", link=link,
                               context=SafetyContext(recipient_name=name, message_type="reminder", brand=BRAND))
        assert verdict.is_ok, verdict.reason
    return time.thread_time() - started  # CPU seconds for 1,000 = ms per customer


GROUP_TITLES = {"lexicon": "written with the word lists", "independent": "written blind"}


def _table(result: dict) -> list[str]:
    groups = result["groups"]
    header = "| Category | " + " | ".join(
        f"{group}: unsafe | caught | recall | precision" for group in groups) + " |"
    lines = [header, "|---|" + "---:|---:|---:|---:|" * len(groups)]
    for index, row in enumerate(next(iter(groups.values()))["rows"]):
        cells = []
        for group in groups.values():
            cell = group["rows"][index]
            cells.append(f"{cell['texts']} | {cell['caught']} | {cell['recall']:.0%} | {cell['precision']:.0%}")
        lines.append(f"| {row['category']} | " + " | ".join(cells) + " |")
    return lines


def figures(result: dict) -> list[dict]:
    rows = []
    for name, group in result["groups"].items():
        title = GROUP_TITLES.get(name, name)
        rows += [
            {"figure": f"{name} set ({title}): unsafe texts through ({group['through']} of {group['unsafe']})",
             "value": 100 * group["through"] / group["unsafe"], "unit": "%", "ceiling": CEILING_THROUGH_PERCENT},
            {"figure": f"{name} set ({title}): false alarms ({group['false_alarms']} of {group['safe']} safe texts, "
                       "near-misses included)",
             "value": 100 * group["false_alarms"] / group["safe"], "unit": "%", "ceiling": CEILING_FALSE_ALARM_PERCENT},
        ]
    return [
        *rows,
        {"figure": "offline filter, one text cold, mean (CPU time)", "value": result["ms_mean"], "unit": "ms",
         "ceiling": CEILING_MS_PER_TEXT},
        {"figure": "offline filter, one text cold, p95 (CPU time)", "value": result["ms_p95"], "unit": "ms",
         "ceiling": CEILING_MS_PER_TEXT},
        {"figure": "offline filter, one text cold, mean (wall clock, shared CPUs)", "value": result["wall_ms_mean"],
         "unit": "ms", "ceiling": CEILING_MS_PER_TEXT},
        {"figure": "a campaign's fallback for 1,000 named customers, per customer (CPU time)",
         "value": result["fallback_ms"], "unit": "ms", "ceiling": CEILING_FALLBACK_MS},
        {"figure": f"a 20,000-character text, the slowest of {len(LONG_TEXT_SHAPES)} shapes "
                   f"({result['long_text_ms'][0]}; CPU time)",
         "value": result["long_text_ms"][1], "unit": "ms", "ceiling": CEILING_LONG_TEXT_MS},
    ]


def section_write(result: dict, elapsed: float) -> None:
    from bench.run_all import DOC, figure_rows

    start, end = f"<!-- bench:{NAME}:start -->", f"<!-- bench:{NAME}:end -->"
    stamp = (f"_Last run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `make bench` on "
             f"{platform.node() or 'this machine'} ({os.cpu_count()} CPUs), {elapsed:.0f} s; "
             f"{result['texts']} texts, {PASSES} passes._")
    block = "\n".join([start, *figure_rows(figures(result)), "", *_table(result), "", stamp, end])
    text = DOC.read_text()
    if start in text:
        head, _, rest = text.partition(start)
        text = head + block + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + f"\n\n## {NAME}\n\n{block}\n"
    DOC.write_text(text)


def main() -> None:
    started = time.perf_counter()
    result = measure()
    section_write(result, time.perf_counter() - started)
    for line in _table(result):
        print("  " + line)
    for figure in figures(result):
        print(f"  {figure['figure']}: {figure['value']:.3g} {figure['unit']} (ceiling {figure['ceiling']})")


if __name__ == "__main__":
    main()
