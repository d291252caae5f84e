"""Pure parts of duplicate detection: normalisation, fingerprints, scores and the in-memory index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incidents.cases.dedupe import (
    NEAR_THRESHOLD,
    CandidateIndex,
    CaseCandidate,
    fingerprint,
    normalise_text,
    stems,
    text_similarity,
)

T0 = datetime(2025, 3, 12, 8, tzinfo=UTC)


def test_normalisation_and_fingerprint_ignore_noise() -> None:
    a = "Огромная ЯМА на ул. Советской!!! 😡 https://vk.cc/abc [id123|Иван]"
    b = "огромная яма на ул советской"
    assert normalise_text(a) == b
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 64
    assert fingerprint("Яма на Советской") != fingerprint("Яма на Садовой")


def test_similarity_thresholds() -> None:
    same = text_similarity(
        "Огромная яма на улице Советской возле школы, машины бьют колёса!",
        "огромная яма на Советской возле школы — машины бьют колеса",
    )
    assert same >= NEAR_THRESHOLD
    inflected = text_similarity("Яму на улице Мира так и не заделали", "Яма на улице Мира так и не заделана")
    assert inflected >= NEAR_THRESHOLD
    different = text_similarity("Не вывозят мусор из контейнеров", "Яма на дороге у школы")
    assert different < 40
    # a short text is not a subset match of a long one
    assert (
        text_similarity("Нет света", "Нет света в доме 5 на улице Ленина с утра, дети мёрзнут")
        < NEAR_THRESHOLD
    )


def _cand(key: int, **kw) -> CaseCandidate:
    base = dict(
        category="roads", topic="roads_pit", municipality_code="33602", settlement_oktmo=None, opened_at=T0
    )
    base.update(kw)
    return CaseCandidate(key=key, **base)


def _match(index: CandidateIndex, text: str, **kw):
    args = dict(
        category="roads",
        topic="roads_pit",
        municipality_code="33602",
        settlement_oktmo=None,
        published_at=T0 + timedelta(hours=3),
    )
    args.update(kw)
    norm = normalise_text(text)
    return index.match(fp=fingerprint(text), stem_text=stems(norm), **args)


def test_index_methods_windows_and_blocks() -> None:
    index = CandidateIndex()
    text = "Глубокая яма на улице Мира у магазина Магнит"
    c1 = index.add(_cand(1, settlement_oktmo="33602151051"))
    index.add_text(1, fingerprint(text), stems(normalise_text(text)))
    m = _match(index, text)
    assert (m.key, m.link, m.score) == (1, "exact", 100.0)
    m = _match(index, "Глубокая яма на улице Мира у магазина")
    assert m.link == "near_duplicate" and m.method == "near_duplicate" and m.score >= NEAR_THRESHOLD
    # a looser text joins only at the same settlement and topic within 3 days
    loose = "На Мира яма возле Магнита, когда заделают"
    assert _match(index, loose) is None
    m = _match(index, loose, settlement_oktmo="33602151051")
    assert m is not None and m.method == "same_place"
    assert _match(index, loose, settlement_oktmo="33602151051", published_at=T0 + timedelta(days=4)) is None
    # outside the 7-day window, another category or municipality: nothing
    assert _match(index, text, published_at=T0 + timedelta(days=8)) is None
    assert _match(index, text, category="housing") is None
    assert _match(index, text, municipality_code="33603") is None
    # a text split off the case by an operator never goes back to it
    index.block(1, fingerprint(text))
    assert c1.blocked and _match(index, text) is None
