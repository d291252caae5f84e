from __future__ import annotations

import threading
from typing import Any

import pytest

from incidents import CATEGORIES
from incidents.analysis import CLASSIFIER_VERSION, Analyzer, with_fallback
from incidents.analysis.evaluate import evaluate


def test_seed_railings_at_height_are_a_hazard(analyzer: Analyzer) -> None:
    res = analyzer.analyse(
        "Ограждения на общих балконах 19 и 20 этажей не закреплены… шатаются, дети туда выходят. Смерть детям..."
    )
    assert res.is_incident and res.hazard and res.hazard_type == "railing_at_height"


def test_seed_power_in_sibir_of_kirovo_chepetsky(analyzer: Analyzer) -> None:
    res = analyzer.analyse(
        "Жители в деревне Сибирь Пасеговского сельского округа Кирово-Чепецкого района жалуются: "
        "напряжение в сети 160 вольт, техника не работает"
    )
    assert res.is_incident and res.category == "power"
    assert res.municipality["code"] == "33618"
    assert res.settlement == {"name": "Сибирь", "type": "д", "oktmo": "33618428211"}


def test_seed_communications_in_staritsa(analyzer: Analyzer) -> None:
    res = analyzer.analyse("В селе Старица Свечинского района уже месяц не работает телефонная связь")
    assert res.is_incident and res.category == "communications"
    assert res.municipality["code"] == "33634"


@pytest.mark.parametrize(
    "text",
    [
        "Продам ВАЗ 2114, люк, литые диски. Цена 180 тыс. руб.",
        "Продаю гараж со смотровой ямой, звоните",
        "Провода для зарядки телефона оптом и в розницу",
        "Плановое отключение воды 12 мая с 9:00 до 17:00 в связи с ремонтом",
        "Огромное спасибо электрикам, быстро восстановили свет",
        "Подскажите, где можно сдать батарейки?",
        "Доброе утро, земляки!",
    ],
)
def test_not_incidents(analyzer: Analyzer, text: str) -> None:
    res = analyzer.analyse(text)
    assert not res.is_incident and not res.hazard and res.category is None


@pytest.mark.parametrize(
    ("text", "hazard_type"),
    [
        ("Открытый люк на тротуаре у школы, ребенок чуть не упал", "open_manhole"),
        ("Оборванный провод висит над тротуаром и искрит", "bare_wires"),
        ("Огромные сосульки свисают над входом в подъезд", "icicles_snow"),
        ("Сильный запах газа в подъезде, газовая служба не едет", "gas_smell"),
        ("Стая бродячих собак нападает на детей", "stray_dogs"),
        ("Дети катаются на тонком льду на пруду", "thin_ice"),
    ],
)
def test_hazards(analyzer: Analyzer, text: str, hazard_type: str) -> None:
    res = analyzer.analyse(text)
    assert res.is_incident and res.hazard and res.hazard_type == hazard_type
    assert res.topic in analyzer.topics and analyzer.topics[res.topic]["category"] == res.category


def test_incident_fields_are_consistent(analyzer: Analyzer) -> None:
    res = analyzer.analyse("Мусор не вывозят две недели в Оричах, контейнеры переполнены")
    assert res.category in CATEGORIES and res.topic.startswith(res.category)
    assert set(res.confidence) >= {"incident", "category", "topic", "hazard", "municipality"}
    assert "мусор" in res.explanation
    assert CLASSIFIER_VERSION.startswith("hybrid-") and analyzer.classifier_version == CLASSIFIER_VERSION


def test_fallback_only_when_text_names_no_place(analyzer: Analyzer) -> None:
    res = with_fallback(analyzer.analyse("Нет света третий день"), "33630")
    assert res.municipality["code"] == "33630" and "source fallback" in res.explanation
    named = with_fallback(analyzer.analyse("В Кумёнах нет света"), "33630")
    assert named.municipality["code"] == "33620"


def test_long_text_is_truncated(analyzer: Analyzer) -> None:
    res = analyzer.analyse("В Кумёнах нет света третий день, холодильники текут. " * 20_000)
    assert res.truncated and "truncated" in res.explanation and res.is_incident


def test_analyse_many_and_threads(analyzer: Analyzer) -> None:
    texts = ["В Кумёнах нет света", "Спасибо за дорогу!", "Открытый люк во дворе, дети рядом"]
    expected = [r.to_dict() for r in analyzer.analyse_many(texts)]
    results: list[list[dict]] = []

    def work() -> None:
        results.append([analyzer.analyse(t).to_dict() for t in texts * 20][:3])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results)


def test_analysing_many_posts_equals_analysing_each(
    analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """analyse_many scores blocks of posts together (SCORE_BLOCK) with the results of analyse."""
    import incidents.analysis.classifier as classifier_module

    monkeypatch.setattr(classifier_module, "SCORE_BLOCK", 4)
    texts = [
        "В Кумёнах нет света",
        "Спасибо за дорогу!",
        "Открытый люк во дворе, дети рядом",
        "+1",
        "Во дворе дома 5 на Ленина огромная яма, машины не проехать, прошу принять меры",
        "В Казани на улице Ленина огромная яма",
        "Продам люк чугунный, недорого",
        "На остановке в Слободском висит оголённый провод",
        "Сосульки над входом в поликлинику, страшно ходить",
    ]
    sources = ["33620", None, "33710", None, "33701000", None, None, "33635", None]
    one_by_one = [
        analyzer.analyse(t, source_municipality=m).to_dict() for t, m in zip(texts, sources, strict=True)
    ]
    assert [r.to_dict() for r in analyzer.analyse_many(texts, source_municipalities=sources)] == one_by_one
    assert analyzer.analyse_many([]) == []
    with pytest.raises(ValueError, match="2 texts but 1 source"):
        analyzer.analyse_many(texts[:2], source_municipalities=["33620"])


def test_a_repeated_text_is_analysed_once_and_each_repetition_gets_its_own_result(
    analyzer: Analyzer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repetitions (same text, same source) share one analysis; the results are those of analyse
    and share nothing mutable, so the source fallback filled into one leaves the others alone."""
    texts = ["+1", "Нет света третий день", "+1", "+1", "Нет света третий день", "Нет света третий день"]
    sources = [None, "33620", None, "33710", "33620", None]
    analysed: list[str] = []
    prepare = analyzer.prepare

    def counting(text: str) -> Any:
        analysed.append(text)
        return prepare(text)

    monkeypatch.setattr(analyzer, "prepare", counting)
    results = analyzer.analyse_many(texts, source_municipalities=sources)
    assert analysed == ["+1", "Нет света третий день", "+1", "Нет света третий день"]
    expected = [
        analyzer.analyse(t, source_municipality=m).to_dict() for t, m in zip(texts, sources, strict=True)
    ]
    assert [r.to_dict() for r in results] == expected
    assert len({id(r) for r in results}) == len(results)
    filled = with_fallback(results[1], "33620")
    assert filled.municipality is not None and filled.municipality["code"] == "33620"
    assert results[4].municipality is None and results[4].confidence == expected[4]["confidence"]
    assert results[4].explanation == expected[4]["explanation"]
    with pytest.raises(TypeError, match="must be a string"):
        analyzer.analyse_many(["+1", ["+1"]])  # type: ignore[list-item]


def test_rejects_non_text(analyzer: Analyzer) -> None:
    with pytest.raises(TypeError):
        analyzer.analyse(None)  # type: ignore[arg-type]


def test_devset_is_learnt(analyzer: Analyzer) -> None:
    """The development set is training data now: a sanity check that the model fits it (quality
    figures come from the blind set only, see test_model.py)."""
    metrics = evaluate("heldout", analyzer)
    assert metrics["counts"]["items"] >= 150
    assert metrics["incident_f1"] >= 0.9 and metrics["category_accuracy"] >= 0.85


@pytest.mark.parametrize(
    "text",
    [
        "Расписание автобусов в Оричах на праздничные дни",
        "В Кумёнах проводится ремонт кровли, просим не оставлять машины у дома",
        "Где сейчас принимают документы на детские пособия?",
        "В Оричах отремонтировали школу: новая кровля, окна и спортзал",
    ],
)
def test_headings_announcements_news_and_questions_are_not_incidents(analyzer: Analyzer, text: str) -> None:
    assert not analyzer.analyse(text).is_incident


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("В Оричах школу так и не отремонтировали, крыша течёт", "education"),
        ("У нас тоже обесточена вся улица, в Котельниче", "power"),
        ("Вот-вот. В поликлинике нет врача-педиатра", "healthcare"),
    ],
)
def test_complaints_without_topic_keywords_of_old(analyzer: Analyzer, text: str, category: str) -> None:
    res = analyzer.analyse(text)
    assert res.is_incident and res.category == category


def test_negated_verb_and_request_marks(analyzer: Analyzer) -> None:
    from incidents.analysis.normalize import clean, tokenize

    feats = analyzer.features(tokenize(clean("Мусор не вывозят, просим не оставлять машины")), "")
    assert {"~negverb", "~negrequest"} <= feats
