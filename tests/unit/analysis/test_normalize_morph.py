from __future__ import annotations

import pytest

from incidents.analysis import morph
from incidents.analysis.normalize import clean, fix_homoglyphs, tokenize, truncate


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[id123|Иван], привет", ", привет"),
        ("[club5|Администрация Кумён] ответьте", "Администрация Кумен ответьте"),
        ("смотрите https://vk.com/wall-1_2 тут", "смотрите тут"),
        ("ямы 😡😡 везде", "ямы везде"),
        ("#ЖКХ_Киров #ямы", "ЖКХ Киров Ямы"),  # hashtags read as names: capitalised
        ("@admin_kirov где свет", "где свет"),
        ("ёлка Ёж", "елка Еж"),
        ("ооочень плохо!!!", "очень плохо!"),
        ("пpовода", "провода"),
        ("ЯMA", "ЯМА"),
        ("Wi-Fi-роутер", "Wi-Fi-роутер"),
        ("19-го этажа", "19-го этажа"),
    ],
)
def test_clean(raw: str, expected: str) -> None:
    assert clean(raw, morph.is_known) == expected


def test_stretched_letters_keep_legit_doubles() -> None:
    assert clean("ссссора", morph.is_known) == "ссора"
    assert clean("сообщение", morph.is_known) == "сообщение"  # a legit double is untouched


def test_homoglyphs_only_inside_cyrillic_words() -> None:
    assert fix_homoglyphs("Kиров") == "Киров"
    assert fix_homoglyphs("hello") == "hello"
    assert fix_homoglyphs("2020") == "2020"


def test_tokenize_sentences_and_abbreviations() -> None:
    toks = tokenize(clean("Нет воды. В д. Сибирь опять", morph.is_known))
    by_text = {t.text: t for t in toks}
    assert by_text["Нет"].sent_start
    assert by_text["В"].sent_start
    assert not by_text["Сибирь"].sent_start  # the dot after «д.» does not end the sentence
    assert by_text["д"].dot_after


def test_tokenize_marks_a_dash_between_words() -> None:
    toks = tokenize(clean("Автобус Киров — Нолинск, Советск-на-Вятке, Луза -Котлас", morph.is_known))
    by_text = {t.text: t for t in toks}
    assert by_text["Киров"].dash_after and by_text["Киров"].punct_after
    assert not by_text["Нолинск"].dash_after and by_text["Нолинск"].punct_after  # a comma
    assert not by_text["Автобус"].dash_after
    assert by_text["Луза"].dash_after
    assert not by_text["Котлас"].dash_after  # the end of the text


def test_truncate() -> None:
    text, cut = truncate("слово " * 2000, 1000)
    assert cut and len(text) <= 1000
    assert truncate("коротко", 1000) == ("коротко", False)


@pytest.mark.parametrize(
    ("word", "lemma"),
    [
        ("ямы", "яма"),
        ("люки", "люк"),
        ("провода", "провод"),
        ("сосульки", "сосулька"),
        ("сломаны", "сломать"),
    ],
)
def test_every_parse_is_considered(word: str, lemma: str) -> None:
    assert lemma in morph.lemmas(word)


def test_common_words_versus_names() -> None:
    assert morph.is_common_word("бор") and morph.is_common_word("ключи")
    assert not morph.is_common_word("сибирь")
    assert not morph.is_common_word("киров")
