"""Text normalisation for the safety filter's word lists: the same fold for the text and the lexicons.

A word list only works if the text cannot dodge it by writing a word differently. `fold` turns
a text into a canonical form:
- NFKC (full-width letters, ligatures) and case folding;
- invisible and bidi characters removed (zero-width space, joiners, LRM/RLM, isolates ...);
- homoglyphs folded to their Latin look-alike (Cyrillic "а", Greek "ο" ...), from the Unicode
  confusables table shipped by `confusable-homoglyphs` (data only, no network);
- Latin diacritics removed ("fück" -> "fuck"); Bengali spelling variants folded (long and short
  i/u, nukta, chandrabindu, khanda ta), so "শালী"/"শালি" or "য়"/"য" match alike;
- leetspeak inside words that have a Latin letter ("sh1t", "@ss", "fu<k" is left alone);
- letters spaced out ("f u c k", "f.u.c.k", "শা লা") joined again, as extra tokens.

`tokens_text` returns the folded words joined by single spaces with a space at each end, so a
lexicon entry (one word, a phrase, or a word with any suffix) is found with one regular expression
per category (see `engage.ai.lexicons`). A second, "squeezed" form collapses every run of a repeated
letter ("fuuuuck" -> "fuck"); only the categories whose words survive squeezing use it.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from confusable_homoglyphs.confusables import confusables_data

BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
LATIN_TO_BENGALI_DIGITS = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")

# Zero-width and joiner characters Bengali writing uses legitimately (র‍্য, emoji sequences).
ZWJ, ZWNJ = "\u200d", "\u200c"
BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")

LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})
# Folds applied after NFKD (decomposed Bengali): long vowels to short, nukta and chandrabindu dropped.
BENGALI_FOLD = str.maketrans({
    "\u09c0": "\u09bf",  # ী -> ি
    "\u09c2": "\u09c1",  # ূ -> ু
    "\u0988": "\u0987",  # ঈ -> ই
    "\u098a": "\u0989",  # ঊ -> উ
    "\u09ce": "\u09a4",  # ৎ -> ত
    "\u09bc": None,  # nukta (য় = য + ়)
    "\u0981": None,  # chandrabindu
    "\u09d7": None,  # au length mark
})
TOKEN = re.compile(r"[\w\u0980-\u09ff*@$]+")
SPLIT_SEPARATORS = re.compile(r"[\s.\-_*·•]+")
LATIN_LETTER = re.compile(r"[a-z]")
MASKED_I = re.compile(r"(?<=[a-z])[!|](?=[a-z])")
# Combining diacritical marks (the blocks Latin, Greek and Cyrillic letters use), not Bengali signs.
LATIN_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")


def _is_bengali(character: str) -> bool:
    return "\u0980" <= character <= "\u09ff"


@functools.cache
def _homoglyph_table() -> dict[int, str]:
    """Non-Latin, non-Bengali characters that look like one ASCII letter or digit -> that character."""
    table: dict[int, str] = {}
    for character, glyphs in confusables_data.items():
        if len(character) != 1 or character.isascii() or _is_bengali(character):
            continue
        for glyph in glyphs:
            target = glyph["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(character)] = target.lower()
                break
    return table


def is_invisible(character: str) -> bool:
    """Format characters (zero-width, bidi controls, soft hyphen, BOM ...): they show nothing."""
    return unicodedata.category(character) == "Cf"


@functools.cache
def _format_characters() -> re.Pattern:
    """Every format (Cf) character, as one character class: scanning a text is one regex search."""
    characters = "".join(chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf")
    return re.compile("[" + re.escape(characters) + "]")


def invisible_characters(text: str) -> list[tuple[int, str]]:
    """(position, character) of each invisible character that is not a legitimate joiner.

    ZWJ and ZWNJ between two Bengali characters (র‍্যাব) or around an emoji are how those scripts
    are written; anywhere else, and every bidi control, is something a reader cannot see.
    """
    found = []
    for match in _format_characters().finditer(text):
        index, character = match.start(), match.group(0)
        if character in (ZWJ, ZWNJ) and 0 < index < len(text) - 1:
            before, after = text[index - 1], text[index + 1]
            if (_is_bengali(before) and _is_bengali(after)) or (
                unicodedata.category(before) == "So" or unicodedata.category(after) == "So"
                or "\ufe00" <= after <= "\ufe0f" or "\ufe00" <= before <= "\ufe0f"
            ):
                continue
        found.append((index, character))
    return found


def strip_invisible(text: str) -> str:
    return _format_characters().sub("", text)


def _fold_characters(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = strip_invisible(text).casefold()
    text = text.translate(_homoglyph_table())
    decomposed = unicodedata.normalize("NFKD", text)
    # Drop the diacritics of Latin letters ("fück"); Bengali vowel signs are in the Bengali block and stay.
    kept = LATIN_DIACRITICS.sub("", decomposed)
    # "b!tch", "sh|t": a ! or | between two Latin letters stands for an i.
    return MASKED_I.sub("i", kept.translate(BENGALI_FOLD))


def _fold_token(token: str) -> str:
    if LATIN_LETTER.search(token):
        token = token.translate(LEET)
    return token


def _spaced_runs(text: str) -> list[str]:
    """Words written letter by letter ("f u c k", "f.u.c.k", "শা লা"): each run joined."""
    runs = []
    for chunk in re.split(r"[,;:!?।\n]+", text):
        pieces = [piece for piece in SPLIT_SEPARATORS.split(chunk) if piece]
        run: list[str] = []
        for piece in [*pieces, ""]:
            is_letter = bool(piece) and (
                (len(piece) == 1 and piece.isalpha())
                or (len(piece) <= 2 and all(_is_bengali(character) for character in piece))
            )
            if is_letter:
                run.append(piece)
                continue
            if len(run) >= 2 and (len(run) >= 3 or any(_is_bengali(part[0]) for part in run)):
                runs.append("".join(run))
            run = []
    return runs


def squeeze(text: str) -> str:
    """Every run of one repeated character collapsed to one ("fuuuck" -> "fuck", "!!!" -> "!")."""
    return re.sub(r"(.)\1+", r"\1", text)


@functools.lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """The folded text (see the module docstring), words joined by single spaces, a space at each end."""
    folded = _fold_characters(text)
    tokens = [_fold_token(token) for token in TOKEN.findall(folded)]
    extra = [_fold_token(run) for run in _spaced_runs(folded)]
    return " " + " ".join(tokens + extra) + " "


@functools.lru_cache(maxsize=8192)
def fold_phrase(phrase: str) -> str:
    """A lexicon entry folded like a text, without the surrounding spaces."""
    folded = _fold_characters(phrase)
    return " ".join(_fold_token(token) for token in TOKEN.findall(folded))


WRITTEN_WORD = re.compile(r"[\w\u0980-\u09ff*@$]+")


def as_written(text: str, folded_words: str) -> str:
    """The words of `text` that fold to `folded_words` (what a word list matched), as the text writes them
    ("ছাড়", not the folded "ছাড"), so a rejection quotes what the writer can find; the folded form when no
    run of words folds to it (letters spaced out: "f u c k")."""
    spans = [match.span() for match in WRITTEN_WORD.finditer(text)]
    size = len(folded_words.split())
    for index in range(len(spans) - size + 1):
        written = text[spans[index][0] : spans[index + size - 1][1]]
        folded = fold_phrase(written)
        if folded == folded_words or squeeze(folded) == folded_words:
            return written
    return folded_words


def bengali_digits(value: object) -> str:
    """`value` with Latin digits written as Bengali digits (১২৩)."""
    return str(value).translate(LATIN_TO_BENGALI_DIGITS)


def latin_digits(value: str) -> str:
    return value.translate(BENGALI_DIGITS)
