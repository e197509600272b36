"""The safety filter's word lists, kept as data: one `<name>.txt` per category in this folder (and two read on
the inbound side: `crisis` for a person writing about harming themselves, `opt_out_requests` for "stop messaging me").

File format (see any file): `#` starts a comment; `#! squeeze` marks a category matched on the
squeezed text as well (repeated letters collapsed, "fuuuck"); one entry a line, folded like the
text (engage.ai.normalize.fold); `word*` matches the word with any ending; a line with spaces is a
phrase; a line starting with `!` is an allowed phrase (a match inside it does not count:
"no hurry" beside "hurry"). Edit the files to tune the filter; every change is measured on the
labelled corpus (engage/tests/safety_corpus/) by `make test` and `make bench`.

    lexicon("profanity").find(text)   # the folded matches, in order of appearance
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from engage.ai.normalize import fold, fold_phrase, squeeze

FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Lexicon:
    name: str
    pattern: re.Pattern | None
    allowed: re.Pattern | None
    is_squeezed: bool
    # One-word entries for masked words ("f*ck"): (entry, allows any ending).
    words: tuple[tuple[str, bool], ...]

    def find(self, text: str, *, folded: str | None = None) -> list[str]:
        """The entries found in `text` (as folded), each once, in order of appearance."""
        folded = fold(text) if folded is None else folded
        if self.allowed is not None:
            folded = self.allowed.sub(lambda match: " " * len(match.group(0)), folded)
        found: list[str] = []
        candidates = [folded, squeeze(folded)] if self.is_squeezed else [folded]
        for candidate in candidates:
            if self.pattern is not None:
                for match in self.pattern.finditer(candidate):
                    if match.group(1) not in found:
                        found.append(match.group(1))
        if "*" in folded:
            for token in folded.split():
                if "*" in token and token.strip("*"):
                    hit = self._masked(token)
                    if hit is None and self.pattern is not None:
                        # An asterisk put inside the word rather than for a letter ("চু*দির", "sh*it").
                        match = self.pattern.search(" " + token.replace("*", "") + " ")
                        hit = match.group(1) if match else None
                    if hit and hit not in found:
                        found.append(hit)
        return found

    def _masked(self, token: str) -> str | None:
        """A word written with asterisks for letters ("f*ck", "b***h"): the entry it stands for."""
        if sum(character != "*" for character in token) < 2:
            return None
        pattern = re.compile("".join("." if character == "*" else re.escape(character) for character in token))
        for entry, _ in self.words:
            if len(entry) == len(token) and pattern.fullmatch(entry):
                return entry
        return None


def _entry_pattern(entry: str) -> str:
    if entry.endswith("*"):
        return re.escape(fold_phrase(entry[:-1])) + r"\S*"
    return re.escape(fold_phrase(entry))


def _compile(entries: list[str]) -> re.Pattern | None:
    entries = [entry for entry in entries if fold_phrase(entry.rstrip("*"))]
    if not entries:
        return None
    # Longest first, so a phrase wins over a word it starts with; whole words only (spaces around).
    alternatives = sorted({_entry_pattern(entry) for entry in entries}, key=len, reverse=True)
    return re.compile(r"(?<= )(" + "|".join(alternatives) + r")(?= )")


@functools.cache
def lexicon(name: str) -> Lexicon:
    """The lexicon `name` (a file in this folder), compiled once per process."""
    entries, allowed = [], []
    is_squeezed = False
    for raw in (FOLDER / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line == "#! squeeze":
            is_squeezed = True
        if not line or line.startswith("#"):
            continue
        (allowed if line.startswith("!") else entries).append(line.lstrip("!"))
    if is_squeezed:
        entries += [squeeze(entry) for entry in entries]
    words = tuple(
        sorted({(fold_phrase(entry.rstrip("*")), entry.endswith("*")) for entry in entries if " " not in entry.strip()})
    )
    return Lexicon(name=name, pattern=_compile(entries), allowed=_compile(allowed), is_squeezed=is_squeezed, words=words)


def lexicon_entries(name: str) -> list[str]:
    """The raw entries of a lexicon file (for lists such as shorteners and salutations)."""
    lines = (FOLDER / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
