"""Morphology: every lemma a Russian word form can have (pymorphy3, cached).

A word form is ambiguous («ямы» is the plural of «яма» or of «ям»), so a rule that
asks for a lemma must see all parses, not only the most likely one. The analyser
is created once per process; lemma sets are cached per word form so that a
stream of posts costs a dictionary look-up per repeated word.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import pymorphy3

log = logging.getLogger(__name__)

_lock = threading.Lock()
_analyzer: pymorphy3.MorphAnalyzer | None = None

PROPER_GRAMMEMES = frozenset({"Geox", "Name", "Surn", "Patr", "Orgn", "Trad"})


def analyzer() -> pymorphy3.MorphAnalyzer:
    """The process-wide pymorphy3 analyser (Russian dictionaries), built on first use."""
    global _analyzer
    if _analyzer is None:
        with _lock:
            if _analyzer is None:
                _analyzer = pymorphy3.MorphAnalyzer(lang="ru")
                log.debug("pymorphy3 analyser loaded")
    return _analyzer


_VERB_POS = frozenset({"VERB", "INFN", "PRTS", "PRTF", "GRND"})
_PREDICATE_POS = frozenset({"VERB", "PRTS", "ADJS", "PRED"})
VERBAL = 1
"""Flag of :func:`pos_flags`: a likely parse is a verb, infinitive, participle or gerund."""
PREDICATE = 2
"""Flag of :func:`pos_flags`: a likely parse can be a clause's predicate (finite verb, short form)."""


@lru_cache(maxsize=400_000)
def analyse_word(word: str) -> tuple[frozenset[str], int]:
    """(:func:`lemmas`, :func:`pos_flags`) of a word form from one pymorphy3 parse (cached).

    Parsing is the costly step for a word form seen for the first time (about 50 µs); both
    answers come from the same parses, so a new word is parsed once.
    """
    word = word.lower().replace("ё", "е")
    out = {word}
    flags = 0
    for parse in analyzer().parse(word):
        out.add(parse.normal_form.replace("ё", "е"))
        if parse.score < 0.1:
            continue
        if parse.tag.POS in _VERB_POS:
            flags |= VERBAL
        if parse.tag.POS in _PREDICATE_POS:
            flags |= PREDICATE
    return frozenset(out), flags


def lemmas(word: str) -> frozenset[str]:
    """All normal forms of a lower-case word form over every parse, plus the form itself.

    ``lemmas("ямы") >= {"яма"}``; ``ё`` is folded to ``е``.
    """
    return analyse_word(word)[0]


def pos_flags(word: str) -> int:
    """:data:`VERBAL` | :data:`PREDICATE` flags over the likely parses (score ≥ 0.1) of a word form.

    Tells a negated action («не вывозят», «не было») from a negated noun, and a clause
    («свалка растёт») from a heading («Расписание автобусов на праздничные дни»).
    """
    return analyse_word(word)[1]


def is_verbal(word: str) -> bool:
    """Whether a likely parse of the word form is a verb, participle or gerund."""
    return bool(pos_flags(word) & VERBAL)


@lru_cache(maxsize=400_000)
def is_known(word: str) -> bool:
    """Whether the word form is in the dictionary (not guessed by suffix)."""
    return analyzer().word_is_known(word.lower())


@lru_cache(maxsize=200_000)
def is_common_word(word: str) -> bool:
    """True when the word has a dictionary parse that is an ordinary word, not a proper name.

    «бор», «ключи», «белая», «старица» are common words; «сибирь», «кумены», «киров» are not.
    """
    word = word.lower().replace("ё", "е")
    m = analyzer()
    if not m.word_is_known(word):
        return False
    for parse in m.parse(word):
        if parse.score < 0.01:
            continue
        grammemes = parse.tag.grammemes
        if PROPER_GRAMMEMES & grammemes or "Abbr" in grammemes:
            continue
        # the name is itself an ordinary word in the nominative («бор», «ключи», «белая»),
        # not merely an inflected form of one («киров» is a genitive of «кир»)
        if "nomn" in grammemes or parse.normal_form.replace("ё", "е") == word:
            return True
    return False


def cache_info() -> dict[str, int]:
    """Sizes of the caches (for diagnostics and the benchmark)."""
    info = analyse_word.cache_info()
    return {"lemmas_cached": info.currsize, "hits": info.hits, "misses": info.misses}
