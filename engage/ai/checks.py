"""The safety filter's checks on form and intent (no network, no database).

Each `check_*` takes the text and what is known about the message and returns a list of
`SafetyReason`s (empty: nothing found). `engage.ai.safety.safety_check` runs them all and reports
every reason. Word lists are data in `engage/ai/lexicons/`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers

from engage.ai.lexicons import lexicon, lexicon_entries
from engage.ai.normalize import as_written, fold, fold_phrase, invisible_characters, latin_digits
from engage.ai.reasons import SafetyReason
from engage.ai.safety_context import SafetyContext

EMAIL_PATTERN = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL_PATTERN = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?।])\s+|\n+")
DIGIT = re.compile(r"[0-9০-৯]")


def _quote(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return f"“{value[:limit]}{'…' if len(value) > limit else ''}”"


# --- credentials, self-talk, prompt leaks ------------------------------------------------------------


# "আপনার পাসওয়ার্ড কী?", "What's your PIN?": asking for the secret itself.
SECRET_QUESTION = re.compile(
    r"(?:পাসওয়ার্ড|পিন|ওটিপি|password|pin|otp)\S*\s+(?:টা\s+|টি\s+|ta\s+)?(?:কী|কি|ki)\s*\?", re.IGNORECASE
)


def _asks_for(sentence: str, folded: str) -> bool:
    return bool(lexicon("requests").find(sentence, folded=folded) or SECRET_QUESTION.search(sentence))


def check_credentials(text: str, *, folded: str | None = None) -> list[SafetyReason]:
    """A sentence that asks for a PIN, OTP, password or card number, and does not warn against sharing one.

    The request may come in the next sentence ("A code was sent to you. Text it back to us.")."""
    if folded is not None and not lexicon("secrets").find(text, folded=folded):
        return []  # no secret named anywhere: no sentence to look at
    sentences = [sentence for sentence in SENTENCE_SPLIT.split(text) if sentence.strip()]
    for index, sentence in enumerate(sentences):
        folded = fold(sentence)
        secrets = lexicon("secrets").find(sentence, folded=folded)
        if not secrets:
            continue
        if lexicon("warnings").find(sentence, folded=folded):
            continue
        asking = sentence if _asks_for(sentence, folded) else None
        if asking is None and index + 1 < len(sentences):
            following = sentences[index + 1]
            following_folded = fold(following)
            if not lexicon("warnings").find(following, folded=following_folded) and _asks_for(following, following_folded):
                asking = f"{sentence} {following}"
        if asking is not None:
            return [SafetyReason(
                "credential_request",
                f"Asks for a secret ({as_written(sentence, secrets[0])}) in {_quote(asking)}. We never ask customers or workers for a "
                "PIN, OTP, password or card number: remove the request.",
            )]
    return []


# What a model writes around a message, never in one: a character or word count, "Draft 1:", "Subject:"
# opening the text, "(Note: I kept ...".
SELF_TALK_MARKS = re.compile(
    r"(?:\(|\b(?:under|within|below|less than|about|exactly)\s+)[0-9০-৯]+\s*(?:characters?|chars|words|অক্ষর|শব্দ)"
    r"|[0-9০-৯]+\s*(?:characters?|chars|অক্ষর)\s*\)|\b(?:character|word) count\b|অক্ষর সংখ্যা"
    r"|^\s*(?:draft|option|version|variant|খসড়া|বিকল্প)\s*[0-9০-৯]*\s*:|\A\s*subject\s*:|\(\s*note\s*:\s*i\b",
    re.IGNORECASE | re.MULTILINE,
)


def check_self_talk(text: str, *, folded: str) -> list[SafetyReason]:
    found = lexicon("self_talk").find(text, folded=folded)
    if not found:
        found = [match.group(0).strip()] if (match := SELF_TALK_MARKS.search(text)) else []
    if not found:
        return []
    return [SafetyReason(
        "ai_self_talk",
        f"The model talks about itself or its instructions ({', '.join(_quote(as_written(text, item)) for item in found[:3])}) "
        "instead of just writing the message.",
    )]


LEAK_WORDS = 6


def _ngrams(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[index : index + size]) for index in range(len(words) - size + 1)}


@functools.lru_cache(maxsize=256)
def _instruction_ngrams(instructions: str) -> frozenset[tuple[str, ...]]:
    return frozenset(_ngrams(fold(instructions).split(), LEAK_WORDS))


def check_prompt_leak(text: str, *, folded: str, instructions: str) -> list[SafetyReason]:
    """Six words in a row taken from the prompt's instructions: the model repeats its prompt."""
    if not instructions:
        return []
    words = folded.split()
    grams = _instruction_ngrams(instructions)
    for index in range(len(words) - LEAK_WORDS + 1):
        gram = tuple(words[index : index + LEAK_WORDS])
        if gram in grams:
            return [SafetyReason(
                "prompt_leak",
                f"The text repeats the prompt's instructions ({_quote(' '.join(gram))}): the model leaked its "
                "prompt. Make sure the prompt does not invite it to repeat its rules.",
            )]
    return []


# A line that opens like a chat transcript or a prompt ("System: You are ...", "নির্দেশনা: ...").
PROMPT_MARKS = re.compile(
    r"^\s*(?:system|user|assistant|instructions?|prompt|নির্দেশনা|নির্দেশাবলী|সিস্টেম)\s*:"
    r"|\[/?\s*(?:system|inst)\b[^\]\n]{0,20}\]|<\|?(?:system|im_start)",
    re.IGNORECASE | re.MULTILINE,
)


def check_prompt_marks(text: str) -> list[SafetyReason]:
    """The prompt's scaffolding in the text (a role line, an instruction block), whatever the prompt said."""
    match = PROMPT_MARKS.search(text)
    if not match:
        return []
    return [SafetyReason(
        "prompt_leak",
        f"The text contains the prompt's scaffolding ({_quote(match.group(0).strip())}): the model leaked its "
        "prompt. Make sure the prompt does not invite it to repeat its rules.",
    )]


# --- the recipient ---------------------------------------------------------------------------------

# A greeting at the start of a sentence, then one to four words, then a comma, "!", a dash or a line end.
GREETING = re.compile(
    r"(?:^|(?<=[\n.!?।]))\s*(?:প্রিয়|সম্মানিত|সম্মানিতা|শ্রদ্ধেয়|হ্যালো|হাই|dear|hi|hello|hey|greetings"
    r"|আসসালামু আলাইকুম|আস্সালামু আলাইকুম|assalamu ?alaikum|asalamu ?alaikum|salam|সালাম|নমস্কার|nomoskar|namaskar"
    r"|good (?:morning|afternoon|evening)|শুভ (?:সকাল|বিকাল|বিকেল|সন্ধ্যা|রাত্রি))"
    r"[ \t]+((?:[^\s,।!?:;.()\-–—]+[ \t]*){1,4}?)[ \t]*(?:[,!:\n—–]|-\s|$)",
    re.IGNORECASE,
)
TITLE_DOT = re.compile(r"\b(Mr|Mrs|Ms|Dr|Md|Engr)\.\s*", re.IGNORECASE)
HONORIFIC_NAME = re.compile(r"^\s*([^\s,।!?]{2,30})\s+(?:ভাই|আপা|আপু|সাহেব|ভাইয়া|bhai|apa|vai|bhaiya)\b", re.IGNORECASE)
NON_NAMES = frozenset(fold_phrase(word) for word in (
    "from", "and", "to", "the", "we", "it", "this", "our", "your", "you", "a", "an", "of", "for", "with", "at",
    "is", "are", "how", "here", "just", "again", "আমাদের", "আপনার", "আপনাকে", "আপনি", "থেকে", "আবার", "ও", "এবং",
    "কেমন", "আছেন", "জানাই", "শুভ", "নমস্কার", "আসসালামু", "আলাইকুম", "সালাম", "assalamu", "alaikum", "salam",
    # Words that open a reply before "bhai"/"ভাই" ("Sorry bhai, ..."): not names.
    "sorry", "thanks", "thank", "ok", "okay", "ji", "jee", "haan", "acha", "accha", "dhonnobad", "ধন্যবাদ", "দুঃখিত",
    "জি", "আচ্ছা", "হ্যাঁ", "ঠিক",
))

# A rough phonetic key so a Bengali name and its Latin spelling compare equal (রুমানা ~ Rumana).
_BENGALI_KEY = {
    "ক": "k", "খ": "k", "গ": "g", "ঘ": "g", "ঙ": "n", "চ": "c", "ছ": "c", "জ": "j", "ঝ": "j", "ঞ": "n",
    "ট": "t", "ঠ": "t", "ড": "d", "ঢ": "d", "ণ": "n", "ত": "t", "থ": "t", "দ": "d", "ধ": "d", "ন": "n",
    "প": "p", "ফ": "f", "ব": "b", "ভ": "b", "ম": "m", "য": "j", "র": "r", "ল": "l", "শ": "s", "ষ": "s",
    "স": "s", "ড়": "r", "ঢ়": "r", "ং": "n", "ৎ": "t",
}
_LATIN_DIGRAPHS = (("ch", "c"), ("sh", "s"), ("ph", "f"), ("th", "t"), ("dh", "d"), ("bh", "b"), ("kh", "k"),
                   ("gh", "g"), ("jh", "j"), ("x", "ks"), ("q", "k"), ("z", "j"), ("v", "b"), ("ck", "k"))


def name_key(word: str) -> str:
    """Consonant skeleton of a name in either script ("রুমানা", "Rumana" -> "rmn")."""
    word = unicodedata.normalize("NFC", word.casefold())
    if any("\u0980" <= character <= "\u09ff" for character in word):
        word = word.replace("য়", "").replace("\u09bc", "")
        key = "".join(_BENGALI_KEY.get(character, "") for character in word)
    else:
        for source, target in _LATIN_DIGRAPHS:
            word = word.replace(source, target)
        key = "".join(character for character in word if character.isalpha() and character not in "aeiouyhw")
    return re.sub(r"(.)\1+", r"\1", key)


def _names_match(candidate: str, recipient_words: list[str]) -> bool:
    key = name_key(candidate)
    if not key:
        return True
    for word in recipient_words:
        other = name_key(word)
        if fold_phrase(candidate) == fold_phrase(word) or key == other:
            return True
        if len(key) >= 3 and len(other) >= 3 and (key.startswith(other) or other.startswith(key)):
            return True
    return False


@functools.cache
def _salutation_words() -> frozenset[str]:
    return frozenset(fold_phrase(word) for word in lexicon_entries("salutations")) | NON_NAMES


@functools.lru_cache(maxsize=256)
def _brand_words(brand: str) -> frozenset[str]:
    return frozenset(fold_phrase(word) for word in brand.split())


@functools.lru_cache(maxsize=4096)
def _greeted_names(text: str, brand: str) -> tuple[tuple[str, ...], ...]:
    """The words each greeting of `text` addresses (greeting words, the brand and numbers left out): pure,
    so cached per text (a campaign's fallback, its recipient's name masked, is the same text throughout)."""
    # "Mr. Hasan": the abbreviation's dot is not the end of the greeting.
    text = TITLE_DOT.sub(r"\1 ", text)
    candidates = [match.group(1) for match in GREETING.finditer(text)]
    honorific = HONORIFIC_NAME.match(text)
    if honorific:
        candidates.append(honorific.group(1))
    brand_words = _brand_words(brand)
    greeted = []
    for candidate in candidates:
        names: list[str] = []
        for word in re.findall(r"[\w\u0980-\u09ff]+", candidate)[:3]:
            folded = fold_phrase(word)
            if len(word) < 2 or not folded or folded in _salutation_words() or folded in brand_words or DIGIT.search(word):
                # A greeting word, the brand, a number: the name (if any) has ended.
                if names:
                    break
                continue
            names.append(word)
        if names:
            greeted.append(tuple(names))
    return tuple(greeted)


def check_recipient(text: str, *, context: SafetyContext) -> list[SafetyReason]:
    """A greeting that names someone other than the recipient ("Dear Karim" to Rumana)."""
    greeted = _greeted_names(text, context.brand)
    if not greeted:
        return []
    recipient_words = [word for word in re.split(r"[\s.,]+", context.recipient_name) if len(word) > 1]
    for names in greeted:
        if not any(_names_match(name, recipient_words) for name in names):
            who = context.recipient_name or "a recipient whose name we do not know"
            return [SafetyReason(
                "wrong_recipient",
                f"Addressed to {_quote(' '.join(names))}, but the message goes to {who}. Address the recipient "
                "by their own name, or without a name (\"প্রিয় গ্রাহক\").",
            )]
    return []


def _same_number(number: phonenumbers.PhoneNumber, others: list[str], region: str) -> bool:
    for other in others:
        try:
            parsed = phonenumbers.parse(latin_digits(other), region)
        except phonenumbers.NumberParseException:
            continue
        if parsed.country_code == number.country_code and parsed.national_number == number.national_number:
            return True
    return False


def check_contacts(
    text: str, *, context: SafetyContext, allowed_contact_details: tuple[str, ...], region: str
) -> list[SafetyReason]:
    """Phone numbers (parsed with `phonenumbers` for the company's region, so dates, times and order
    numbers are not numbers) and emails other than the recipient's own or the company's."""
    reasons: list[SafetyReason] = []
    unlinked = URL_PATTERN.sub(" ", text)
    allowed_emails = {context.recipient_email.lower()} | {
        item.lower() for item in allowed_contact_details if "@" in item
    }
    for email in dict.fromkeys(EMAIL_PATTERN.findall(unlinked)):
        if email.lower() not in allowed_emails:
            reasons.append(SafetyReason("contact_email", f"Mentions another person's email: {email}"))
    if len(DIGIT.findall(unlinked)) >= 6:
        allowed_phones = [context.recipient_phone, *[item for item in allowed_contact_details if "@" not in item]]
        allowed_phones = [phone for phone in allowed_phones if phone]
        for match in phonenumbers.PhoneNumberMatcher(latin_digits(unlinked), region or "BD",
                                                     leniency=phonenumbers.Leniency.VALID):
            if _same_number(match.number, allowed_phones, region or "BD"):
                continue
            start, end = match.start, match.end
            reasons.append(SafetyReason(
                "contact_phone", f"Mentions another person's phone number: {unlinked[start:end].strip()}"
            ))
    return reasons


ADDRESS = re.compile(
    r"(?:\b(?:house|flat|road|block|sector|lane|apartment|apt)\b|বাড়ি|বাসা|ফ্ল্যাট|রোড|সড়ক|ব্লক|সেক্টর|লেন)"
    r"\s*(?:no\.?|#|নং|নম্বর|নাম্বার)?\s*[:#-]?\s*[0-9০-৯]+",
    re.IGNORECASE,
)


def check_customer_details(text: str) -> list[SafetyReason]:
    """In a message to a worker: a customer's street address."""
    match = ADDRESS.search(text)
    if not match:
        return []
    return [SafetyReason(
        "customer_details",
        f"A customer's address ({_quote(match.group(0))}) in a message to a worker: coaching never names "
        "customers' addresses or contact details.",
    )]


# --- form: placeholders, markup, invisible characters, shouting ---------------------------------------

PLACEHOLDERS = [
    re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL),
    re.compile(r"\$\{\s*\w+\s*\}|\{\s*[A-Za-z_\u0980-\u09ff][\w .\u0980-\u09ff]{0,30}\}|%\(\w+\)s|(?<!\w)%s(?!\w)"
               r"|(?<![\w$])\$[a-z_][a-z0-9_]*\b"),
    re.compile(r"\[\s*[A-Z][A-Z0-9_ ]{2,}\s*\]"),
    re.compile(r"\[[^\]\n]{0,30}\b(?:name|link|url|date|time|service|company|customer|phone|insert|your|price|code)\b"
               r"[^\]\n]{0,30}\]", re.IGNORECASE),
    re.compile(r"\[[^\]\n]{0,30}(?:নাম|লিংক|লিঙ্ক|তারিখ|সময়|সার্ভিস|দাম|কোড)[^\]\n]{0,30}\]"),
    re.compile(r"<\s*(?:name|customer|link|date|company|service)[^>]*>", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z])(?:X{3,}|x{4,})(?![A-Za-z])"),
]


def check_placeholders(text: str) -> list[SafetyReason]:
    found: list[str] = []
    for pattern in PLACEHOLDERS:
        for match in pattern.finditer(text):
            if match.group(0) not in found:
                found.append(match.group(0))
    if not found:
        return []
    return [SafetyReason(
        "placeholder",
        f"Unfilled placeholder(s) {', '.join(_quote(item, 30) for item in found[:3])}: the text was not finished. "
        "Variables are filled by the template, never by the model.",
    )]


MARKUP = [
    ("HTML", re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<!--")),
    ("script", re.compile(r"javascript:|\bon(?:click|load|error|mouseover)\s*=", re.IGNORECASE)),
    ("an HTML entity", re.compile(r"&(?:[a-z]{2,8}|#\d{2,5});", re.IGNORECASE)),
    ("markdown", re.compile(
        r"\*\*[^*\n]+\*\*|__[^_\n]+__|^#{1,6}\s|```|\[[^\]\n]+\]\((?:https?://|www\.)[^)]*\)|^\s*\|.*\|\s*$"
        r"|(?<![\w*])\*[^*\s][^*\n]{0,60}[^*\s]\*(?![\w*])",
        re.MULTILINE,
    )),
]


def check_markup(text: str) -> list[SafetyReason]:
    kinds = [kind for kind, pattern in MARKUP if pattern.search(text)]
    if not kinds:
        return []
    return [SafetyReason(
        "markup",
        f"Contains {', '.join(kinds)}: messages are plain text (a customer would see the raw symbols). Remove the "
        "formatting.",
    )]


def check_invisible(text: str) -> list[SafetyReason]:
    found = invisible_characters(text)
    if not found:
        return []
    names = list(dict.fromkeys(unicodedata.name(character, f"U+{ord(character):04X}") for _, character in found))
    return [SafetyReason(
        "invisible_characters",
        f"{len(found)} invisible or text-direction character(s) ({', '.join(names[:3]).lower()}): a reader cannot see "
        "them and they can hide what a text or link says. Retype the text.",
    )]


ACRONYMS = frozenset({"AC", "OTP", "SMS", "BDT", "ID", "OK", "TV", "CCTV", "UPS", "IPS", "LED", "LPG", "CNG", "WIFI",
                      "USB", "PC", "IT", "FAQ", "PIN", "URL", "AM", "PM", "BD", "MR", "MRS", "DR", "CEO", "COD", "VAT",
                      "GPS", "ATM", "TK", "RO", "HD", "API", "SIM", "NID", "IFTAR"})
# A file name's capitals ("README.md") are not shouting.
CAPS_RUN = re.compile(r"\b[A-Z]{2,}(?:[ \t,]+[A-Z]{2,})*\b(?!\.[a-z])")


def check_shouting(text: str, *, promo_codes: tuple[str, ...] = ()) -> list[SafetyReason]:
    """Several exclamation marks, or words in capitals (acronyms and the campaign's code aside)."""
    problems = []
    if re.search(r"[!！]\s*[!！]", text):
        problems.append("several exclamation marks")
    ignored = ACRONYMS | {code.upper() for code in promo_codes}
    for run in CAPS_RUN.finditer(text):
        words = [word for word in re.split(r"[\s,]+", run.group(0)) if word and word not in ignored]
        if len(words) >= 2 or any(len(word) >= 6 for word in words):
            problems.append(f"capitals ({_quote(run.group(0), 30)})")
            break
    if not problems:
        return []
    return [SafetyReason("tone_shouting", f"Shouting: {' and '.join(problems)}. Write calmly, in normal case.")]
