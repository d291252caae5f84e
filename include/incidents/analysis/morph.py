"""Morphology: every lemma a Russian word form can have (pymorphy3, cached).

A word form is ambiguous («ямы» is the plural of «яма» or of «ям»), so a rule that
asks for a lemma must see all parses, not only the most likely one. The analyser
is created once per process; lemma sets are cached per word form so that a
stream of posts costs a dictionary look-up per repeated word.

Parsing a word form seen for the first time costs about 75 µs (and its proper-name check as
much again), and a stream of posts keeps bringing new ones: the long tail of rare words. The
**lexicon** (``model/lexicon.npz``, built by ``python -m incidents build-lexicon``) holds the
answers for every word of navec's 250,000-word vocabulary, computed by the same functions from
the same parses, so such a word costs a look-up. It is used only while the installed
dictionaries are the ones it was built from (else every word is parsed, with a warning).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np
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


WORD_CACHE_ENTRIES = 100_000
"""Distinct word forms each per-word cache of the analyser keeps (morphology, places, rules).
A stream of posts repeats its common words; a rare word that fell out costs a lexicon look-up
(a few µs) or, if misspelt, a parse. Bounded, so that a long run's memory stays flat."""

_VERB_POS = frozenset({"VERB", "INFN", "PRTS", "PRTF", "GRND"})
_PREDICATE_POS = frozenset({"VERB", "PRTS", "ADJS", "PRED"})
VERBAL = 1
"""Flag of :func:`pos_flags`: a likely parse is a verb, infinitive, participle or gerund."""
PREDICATE = 2
"""Flag of :func:`pos_flags`: a likely parse can be a clause's predicate (finite verb, short form)."""


KNOWN = 4
"""Lexicon flag: the word form is in the dictionary (:func:`is_known`)."""
COMMON = 8
"""Lexicon flag: :func:`is_common_word`."""
_PRESENT = 16
"""Lexicon flag: the entry was built (its word form is normalised Cyrillic)."""


def _lemmas_and_flags(word: str, parses: Sequence[Any]) -> tuple[frozenset[str], int]:
    out = {word}
    flags = 0
    for parse in parses:
        out.add(parse.normal_form.replace("ё", "е"))
        if parse.score < 0.1:
            continue
        if parse.tag.POS in _VERB_POS:
            flags |= VERBAL
        if parse.tag.POS in _PREDICATE_POS:
            flags |= PREDICATE
    return frozenset(out), flags


def _common(word: str, parses: Sequence[Any]) -> bool:
    for parse in parses:
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


@lru_cache(maxsize=WORD_CACHE_ENTRIES)
def analyse_word(word: str) -> tuple[frozenset[str], int]:
    """(:func:`lemmas`, :func:`pos_flags`) of a word form from one pymorphy3 parse (cached).

    Parsing is the costly step for a word form seen for the first time (about 75 µs) unless the
    lexicon has it; both answers come from the same parses, so a new word is parsed once.
    """
    word = word.lower().replace("ё", "е")
    entry = lexicon().entry(word)
    if entry is not None:
        return entry
    return _lemmas_and_flags(word, analyzer().parse(word))


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


@lru_cache(maxsize=WORD_CACHE_ENTRIES)
def is_known(word: str) -> bool:
    """Whether the word form is in the dictionary (not guessed by suffix)."""
    word = word.lower()
    flags = lexicon().flags_of(word)
    if flags is not None:
        return bool(flags & KNOWN)
    return analyzer().word_is_known(word)


@lru_cache(maxsize=WORD_CACHE_ENTRIES // 2)
def is_common_word(word: str) -> bool:
    """True when the word has a dictionary parse that is an ordinary word, not a proper name.

    «бор», «ключи», «белая», «старица» are common words; «сибирь», «кумены», «киров» are not.
    """
    word = word.lower().replace("ё", "е")
    flags = lexicon().flags_of(word)
    if flags is not None:
        return bool(flags & COMMON)
    m = analyzer()
    return m.word_is_known(word) and _common(word, m.parse(word))


def cache_info() -> dict[str, int]:
    """Sizes of the caches (for diagnostics and the benchmark)."""
    info = analyse_word.cache_info()
    return {"lemmas_cached": info.currsize, "hits": info.hits, "misses": info.misses}


# --------------------------------------------------------------------------- the lexicon

LEXICON_PATH = Path(__file__).resolve().parent / "model" / "lexicon.npz"
_LEXICON_WORD = re.compile(r"[а-я]+(?:-[а-я]+)*")
"""The navec words the lexicon covers: normalised (lower case, ``ё`` as ``е``) Cyrillic forms."""


def dictionary_stamp() -> dict[str, str]:
    """What a lexicon's answers depend on: pymorphy3 and its dictionaries' versions."""
    meta = analyzer().dictionary.meta
    return {
        "pymorphy3": _dist_version("pymorphy3"),
        "pymorphy3_dicts_ru": _dist_version("pymorphy3-dicts-ru"),
        "dictionary_compiled_at": str(meta.get("compiled_at")),
    }


class Lexicon:
    """Precomputed :func:`analyse_word` answers and :data:`KNOWN`/:data:`COMMON` flags per navec word.

    Entries are aligned with navec's vocabulary (the instance the model uses, so its word index
    is shared); a lemma is stored as the navec row of the same string, or as an index into a
    small table of lemmas navec lacks (``~i``). An empty lexicon answers ``None`` to everything.
    """

    def __init__(
        self,
        word_ids: dict[str, int] | None = None,
        words: Sequence[str] = (),
        flags: bytes = b"",
        indptr: np.ndarray | None = None,
        refs: np.ndarray | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.word_ids = word_ids or {}
        self.words = words
        self.flags = flags
        self.indptr = indptr if indptr is not None else np.zeros(1, dtype=np.int32)
        self.refs = refs if refs is not None else np.zeros(0, dtype=np.int32)
        self.extra = extra

    def __len__(self) -> int:
        return sum(1 for f in self.flags if f & _PRESENT)

    def flags_of(self, word: str) -> int | None:
        """The entry's flags of a normalised word form, ``None`` when the lexicon lacks it."""
        i = self.word_ids.get(word)
        if i is None:
            return None
        f = self.flags[i]
        return f if f & _PRESENT else None

    def entry(self, word: str) -> tuple[frozenset[str], int] | None:
        """:func:`analyse_word`'s answer for a normalised word form, ``None`` when it is not here."""
        f = self.flags_of(word)
        if f is None:
            return None
        i = self.word_ids[word]
        words, extra = self.words, self.extra
        refs = self.refs[self.indptr[i] : self.indptr[i + 1]].tolist()
        return frozenset([word, *(words[r] if r >= 0 else extra[~r] for r in refs)]), f & (VERBAL | PREDICATE)


_lexicon: Lexicon | None = None
_lexicon_lock = threading.Lock()  # not _lock: loading the lexicon builds the analyser


def lexicon() -> Lexicon:
    """The process-wide lexicon (loaded on first use; empty when missing or stale)."""
    global _lexicon
    if _lexicon is None:
        with _lexicon_lock:
            if _lexicon is None:
                _lexicon = load_lexicon()
    return _lexicon


def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    """The lexicon at ``path`` over the shared navec vocabulary; empty (every word parsed) when the
    file is missing or was built from other dictionaries or another navec."""
    from incidents.analysis.model import NAVEC_FILE, load_navec

    if not path.exists():
        log.warning(
            "no lexicon at %s: every new word form is parsed (python -m incidents build-lexicon)", path
        )
        return Lexicon()
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        expected = {**dictionary_stamp(), "navec": NAVEC_FILE}
        if meta.get("stamp") != expected:
            log.warning("lexicon %s was built for %s, not %s: not used", path, meta.get("stamp"), expected)
            return Lexicon()
        navec = load_navec()
        if len(navec.vocab.words) != int(meta["navec_words"]):
            log.warning("lexicon %s does not match navec's vocabulary: not used", path)
            return Lexicon()
        return Lexicon(
            navec.vocab.word_ids,
            navec.vocab.words,
            z["flags"].tobytes(),
            z["indptr"],
            z["refs"],
            z["extra"].tolist(),
        )


def build_lexicon(words: Sequence[str]) -> dict[str, Any]:
    """The lexicon's arrays for a vocabulary (navec's), from one pymorphy3 parse per covered word."""
    index = {w: i for i, w in enumerate(words)}
    m = analyzer()
    flags = np.zeros(len(words), dtype=np.uint8)
    indptr = np.zeros(len(words) + 1, dtype=np.int64)
    refs: list[int] = []
    extra: dict[str, int] = {}
    for i, word in enumerate(words):
        if _LEXICON_WORD.fullmatch(word):
            parses = m.parse(word)
            lemma_set, f = _lemmas_and_flags(word, parses)
            known = m.word_is_known(word)
            f |= _PRESENT | (KNOWN if known else 0) | (COMMON if known and _common(word, parses) else 0)
            flags[i] = f
            for lemma in sorted(lemma_set - {word}):
                j = index.get(lemma)
                refs.append(j if j is not None else ~extra.setdefault(lemma, len(extra)))
        indptr[i + 1] = len(refs)
    return {
        "flags": flags,
        "indptr": indptr.astype(np.int32),
        "refs": np.asarray(refs, dtype=np.int32),
        "extra": np.asarray(sorted(extra, key=extra.__getitem__), dtype=str),
    }


def write_lexicon(path: Path = LEXICON_PATH) -> dict[str, Any]:
    """Build the lexicon over navec's vocabulary and write it to ``path`` (deterministic bytes)."""
    from incidents.analysis.model import NAVEC_FILE, load_navec

    words = load_navec().vocab.words
    arrays = build_lexicon(words)
    meta = {
        "stamp": {**dictionary_stamp(), "navec": NAVEC_FILE},
        "navec_words": len(words),
        "entries": int(np.count_nonzero(arrays["flags"] & _PRESENT)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, meta=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)
    return meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=LEXICON_PATH, help="where to write the lexicon")


def run(args: argparse.Namespace) -> int:
    """``python -m incidents build-lexicon``: rebuild ``model/lexicon.npz`` from the installed
    pymorphy3 dictionaries and navec's vocabulary (run after upgrading either)."""
    t0 = time.perf_counter()
    meta = write_lexicon(args.out)
    log.info("lexicon: %d word forms in %.0fs -> %s", meta["entries"], time.perf_counter() - t0, args.out)
    sys.stdout.write(json.dumps({"path": str(args.out), **meta}, ensure_ascii=False) + "\n")
    return 0
