"""The morphology lexicon: the same answers as parsing, built for the installed dictionaries."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from incidents.analysis import morph
from incidents.analysis.model import load_navec


def _parsed(word: str) -> tuple[frozenset[str], int, bool, bool]:
    """What the lexicon must answer for a normalised word form, computed by parsing."""
    m = morph.analyzer()
    parses = m.parse(word)
    lemma_set, flags = morph._lemmas_and_flags(word, parses)
    known = m.word_is_known(word)
    return lemma_set, flags, known, known and morph._common(word, parses)


def _from_lexicon(lex: morph.Lexicon, word: str) -> tuple[frozenset[str], int, bool, bool] | None:
    entry, flags = lex.entry(word), lex.flags_of(word)
    if entry is None or flags is None:
        return None
    return entry[0], entry[1], bool(flags & morph.KNOWN), bool(flags & morph.COMMON)


def test_committed_lexicon_is_built_for_the_installed_dictionaries() -> None:
    """A pymorphy3 or navec upgrade fails here until `python -m incidents build-lexicon` is run
    (a stale lexicon is not used at all, so the analyser would silently slow down)."""
    with np.load(morph.LEXICON_PATH, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["stamp"]["pymorphy3"] == morph.dictionary_stamp()["pymorphy3"]
    assert meta["stamp"] == {**morph.dictionary_stamp(), "navec": meta["stamp"]["navec"]}
    assert len(morph.load_lexicon()) == meta["entries"] > 200_000


def test_lexicon_answers_as_parsing_does() -> None:
    lex = morph.load_lexicon()
    words = load_navec().vocab.words
    sample = random.Random(7).sample(range(len(words)), 3_000)
    checked = 0
    for i in sample:
        got = _from_lexicon(lex, words[i])
        if got is None:
            assert not morph._LEXICON_WORD.fullmatch(words[i])
            continue
        assert got == _parsed(words[i]), words[i]
        checked += 1
    assert checked > 2_500


def test_build_covers_normalised_cyrillic_and_stores_lemmas_outside_the_vocabulary() -> None:
    words = ["ямы", "яма", "Киров", "ёлки", "wi-fi", "во-первых", "провалилась"]
    arrays = morph.build_lexicon(words)
    lex = morph.Lexicon(
        {w: i for i, w in enumerate(words)},
        words,
        arrays["flags"].tobytes(),
        arrays["indptr"],
        arrays["refs"],
        arrays["extra"].tolist(),
    )
    for word in ("ямы", "яма", "во-первых", "провалилась"):
        assert _from_lexicon(lex, word) == _parsed(word)
    assert "яма" in lex.entry("ямы")[0]  # type: ignore[index]
    assert "провалиться" in arrays["extra"].tolist()  # a lemma the vocabulary lacks
    for word in ("Киров", "ёлки", "wi-fi", "нет-такого"):  # not normalised Cyrillic, or absent
        assert lex.entry(word) is None and lex.flags_of(word) is None
    assert morph.build_lexicon(words)["refs"].tolist() == arrays["refs"].tolist()


def test_missing_or_stale_lexicon_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert len(morph.load_lexicon(tmp_path / "none.npz")) == 0
    stale = tmp_path / "stale.npz"
    meta = {
        "stamp": {**morph.dictionary_stamp(), "pymorphy3_dicts_ru": "0.0"},
        "navec_words": 1,
        "entries": 1,
    }
    np.savez_compressed(
        stale,
        meta=np.asarray(json.dumps(meta)),
        flags=np.zeros(1, np.uint8),
        indptr=np.zeros(2, np.int32),
        refs=np.zeros(0, np.int32),
        extra=np.asarray([], dtype=str),
    )
    with caplog.at_level("WARNING"):
        assert len(morph.load_lexicon(stale)) == 0
    assert "not used" in caplog.text
    # without a lexicon every word is parsed: the same answer
    assert morph._lemmas_and_flags("ямы", morph.analyzer().parse("ямы"))[0] == morph.lemmas("ямы")
