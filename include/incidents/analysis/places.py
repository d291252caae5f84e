"""Gazetteer matcher: which municipality and settlement of the Kirov region a post talks about.

Sources: ``include/incidents/reference/municipalities.csv`` and ``settlements.csv``
(OKTMO, copied by the reference data from the public OKTMO volume 5) read directly with
:mod:`csv`, plus a small curated list of the city of Kirov's microdistricts and
localities mapped to its four city districts (after the table «Административное деление
Кирова», Russian Wikipedia) and of distinctive central streets.

Place names are matched in any grammatical case: a word matches a gazetteer word when
their pymorphy3 lemma sets intersect or, for words the dictionary does not know
(«Кумёнах», «Оричах»), when the word starts with the name's stem and only a case
ending is left. Context decides what counts (see :meth:`PlaceResolver.resolve`):

* a type marker («д.», «с.», «пос.», «пгт», «деревня», «в селе»…) or a district named in
  the text always makes a name count; a district named in the text wins ties among
  same-named settlements (410 names repeat in the region);
* a name that is also an ordinary word (854 of them: «Бор», «Ключи», «Белая») or a
  person's name counts only with a marker, a named district, or — for towns and
  district centres — a capital letter not at the start of a sentence;
* a name after «ул.», «улица», «проспект», «им.» or before «улица»… is a street, not a place;
* when the text names no place the result is empty; the caller applies the source's
  municipality (:func:`incidents.analysis.classifier.with_fallback`).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from incidents.analysis import morph
from incidents.analysis.normalize import ABBREVIATIONS, Token, clean, tokenize, truncate

log = logging.getLogger(__name__)

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"
KIROV_PLACES_PATH = Path(__file__).resolve().parent / "data" / "kirov_places.yaml"
KIROV = "33701"
KIROV_CITY_OKTMO = "33701000001"

_ADJ_ENDINGS = (
    "ий",
    "ой",
    "ый",
    "ого",
    "ому",
    "им",
    "ом",
    "ая",
    "ую",
    "ое",
    "ые",
    "ие",
    "их",
    "ими",
    "ым",
    "ей",
)
_NAME_VOWELS = "аеиоуыэюяйь"
TYPE_RANK = {"г": 5, "пгт": 4, "мкр": 4, "с": 3, "п": 2, "д": 1}

# marker lemma -> settlement type
_MARKER_LEMMAS = {
    "деревня": "д",
    "дер": "д",
    "село": "с",
    "поселок": "п",
    "посёлок": "п",
    "пос": "п",
    "пгт": "пгт",
    "город": "г",
    "гор": "г",
    "микрорайон": "мкр",
    "мкр": "мкр",
    "м-н": "мкр",
    "мкрн": "мкр",
    "починок": "д",
    "станция": "п",
}
# single letters count as markers only when followed by a dot (except д and г)
_LETTER_MARKERS = {"д": "д", "с": "с", "п": "п", "г": "г"}
_LETTERS_WITHOUT_DOT = frozenset({"д", "г"})
_STREET_BEFORE = frozenset(
    {
        "ул",
        "улица",
        "пр",
        "пр-т",
        "просп",
        "проспект",
        "пер",
        "переулок",
        "пл",
        "площадь",
        "бульвар",
        "б-р",
        "наб",
        "набережная",
        "им",
        "имя",
        "имени",
        "тракт",
        "шоссе",
        "проезд",
        "остановка",
        "тц",
        "трц",
    }
)
_STREET_AFTER = frozenset(
    {"улица", "переулок", "проспект", "площадь", "бульвар", "шоссе", "тракт", "проезд", "набережная"}
)
_STREET_PREPOSITIONS = frozenset({"на", "по"})
_STREET_LINKS = frozenset({"у", "от", "до", "над", "возле", "около", "вдоль", "и", "между", "угол"})
"""Words before a street's name where a village would take «в»: «у Комсомольской», «от
Воровского до Ленина», «перекрёсток Московской и Ленина»."""
_CROSSING_LEMMAS = frozenset({"перекресток", "пересечение", "угол"})
"""Words before a street's name at a crossing: «на перекрёстке Московской и Карла Маркса»."""
_STREET_FORM = re.compile(r".+(?:ова|ева|ина|ына|ого|его|ой|ей|ая|ую)")
"""Forms of a street's name right after «на»/«по»: a person's name in the genitive («на Кирова»,
«по Ленина», «на Горького») or a feminine adjective («на Московской», «по Советской»). A town or
village in these forms takes «в» («в Кирове», «в Московской»), so «на Кирова 12» is a street."""
_ADJECTIVE_FORM = re.compile(r".+(?:[ая]я|[иыо]й|[оеыи]е|[оеу]ю|[ое]го|[ое]му|[ое]м|[ыи]х|[ыи]ми?|[ое]й)")
"""A street's name before «улица» is an adjective («Луговая улица», «Садовый проезд»)."""
_QUANTITY_LEMMAS = frozenset(
    {
        "день",
        "сутки",
        "ночь",
        "час",
        "минута",
        "неделя",
        "месяц",
        "год",
        "лето",
        "раз",
        "км",
        "километр",
        "метр",
        "м",
        "человек",
        "семья",
        "рубль",
        "руб",
        "тысяча",
        "тыс",
        "градус",
        "дом",
        "двор",
        "этаж",
        "ребенок",
        "машина",
        "мая",
        "марта",
        "апреля",
        "января",
        "февраля",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    }
)
"""Words after a number that make it a quantity or a date, not a house number («Оричи 2 дня»)."""
_DEMONYM_CODES = {
    "кировчан": "33701", "чепчан": "33707", "слобожан": "33713", "котельничан": "33710",
    "полянчан": "33704", "белохолуничан": "33605", "нагорчан": "33625", "уржумц": "33641",
    "яранц": "33650", "омутнинц": "33628", "нолинчан": "33627", "зуевчан": "33614",
}  # fmt: skip
"""Residents of a town («кировчане», «котельничане»): a post addressed to them or about them is
about their town, when it names no place (and never over another region's city)."""
_DEMONYMS = re.compile("(" + "|".join(sorted(_DEMONYM_CODES, key=len, reverse=True)) + ")")
_DEMONYM_STARTS = frozenset(stem[:3] for stem in _DEMONYM_CODES)
"""First three letters of those: most words are no resident's name, checked by a set."""
_DISTRICT_WORDS = frozenset(
    {"район", "р-н", "р-на", "р-не", "р-ну", "округ", "мо", "муниципальный", "районный"}
)
_POSELENIE_WORDS = frozenset({"сельский", "поселение", "сельсовет", "с/п", "сп", "округ", "городской"})
_ABBREVIATED_DISTRICTS = {"кчр": "33618"}
_ABBREVIATED_TOWNS = {"кч": "33707"}
"""Abbreviations of towns, in capitals (or in a text without case): «КЧ» is Кирово-Чепецк."""
_TOWN_INSTITUTIONS = frozenset(
    {
        "больница", "поликлиника", "школа", "роддом", "гимназия", "лицей", "техникум",
        "колледж", "водоканал", "почтамт", "музей", "театр", "мфц", "рынок", "вокзал", "автовокзал",
        "библиотека", "подстанция", "жкх", "школьник", "црб",
    }
)  # fmt: skip
"""Institutions in the district's centre: where the centre is a town of its own (an urban okrug),
«Вятскополянская больница», «Котельничский водоканал», «Слободская ЦРБ» name that town (writers
put the central district hospital in the town 13 times to 5 in the district)."""
_DISTRICT_INSTITUTIONS = _TOWN_INSTITUTIONS | {"администрация", "прокуратура", "райпо"}
"""Institutions named after their district: «Уржумская ЦРБ», «в Лузской больнице» name the district."""

# Kirov: microdistricts and localities -> city district (after «Административное деление Кирова»).
# (name, city district slug, needs_marker): needs_marker for names that are ordinary words.
KIROV_LOCALITIES: tuple[tuple[str, str, bool], ...] = (
    ("Нововятск", "novovyatsky", False),
    ("Радужный", "novovyatsky", True),
    ("Соломинцы", "novovyatsky", False),
    ("Сошени", "novovyatsky", False),
    ("Красное", "novovyatsky", True),
    ("Филейка", "oktyabrsky", False),
    ("Лепсе", "oktyabrsky", False),
    ("ОЦМ", "oktyabrsky", False),
    ("Бахта", "oktyabrsky", False),
    ("Ганино", "oktyabrsky", False),
    ("Костино", "oktyabrsky", False),
    ("Садаковский", "oktyabrsky", False),
    ("Русское", "oktyabrsky", True),
    ("Чистые Пруды", "leninsky", False),
    ("Юго-Западный", "leninsky", False),
    ("Юго-Запад", "leninsky", False),
    ("Лянгасово", "leninsky", False),
    ("Победилово", "leninsky", False),
    ("Дороничи", "leninsky", False),
    ("Захарищевы", "leninsky", False),
    ("Зональный", "leninsky", True),
    ("Дружба", "leninsky", True),
    ("Дымково", "pervomaysky", False),
    ("Коминтерн", "pervomaysky", False),
    ("Коминтерновский", "pervomaysky", False),
    ("Вересники", "pervomaysky", False),
    ("Макарье", "pervomaysky", False),
    ("Озерки", "pervomaysky", True),
    ("Порошино", "pervomaysky", False),
    ("Сидоровка", "pervomaysky", False),
    ("Богородская", "pervomaysky", True),
    ("Большая Субботиха", "pervomaysky", False),
    ("Малая Субботиха", "pervomaysky", False),
    ("Спичфабрика", "pervomaysky", False),
)
# Colloquial names of towns: alias -> OKTMO of the settlement. A village of the alias's name
# still wins after its marker («д. Поляны»); every writer meant the town by a bare «в Полянах».
ALIASES: tuple[tuple[str, str], ...] = (("Чепецк", "33707000001"), ("Поляны", "33704000001"))
_CASE_ENDINGS = (
    "ами",
    "ями",
    "ах",
    "ях",
    "ам",
    "ям",
    "ов",
    "ев",
    "ей",
    "ой",
    "ом",
    "ем",
    "е",
    "у",
    "ю",
    "ы",
    "и",
    "а",
    "я",
    "о",
)
_NOM_ENDINGS = ("", "и", "ы", "а", "я", "о", "е", "ь")

# Distinctive streets of Kirov's centre: weak evidence for the city (towns have streets of the same name).
KIROV_STREETS: tuple[tuple[str, ...], ...] = (
    ("воровского",),
    ("октябрьский", "проспект"),
    ("профсоюзная",),
    ("московская",),
    ("комсомольская",),
    ("ленина",),
    ("карла", "маркса"),
    ("спасская",),
    ("преображенская",),
    ("дерендяева",),
    ("щорса",),
    ("пролетарская",),
    ("лепсе",),
    ("некрасова",),
    ("мира",),
    ("труда",),
)


def _street_forms(word: str) -> set[str]:
    if word.endswith(("ая", "ий", "ый")):  # «Московская» → «Московской», «Московскую»…
        stem = word[:-2]
        return {stem + e for e in ("ая", "ой", "ую", "ий", "ый", "ого", "ом", "ому")}
    return {word}


_STREETS_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _street in KIROV_STREETS:
    for _form in _street_forms(_street[0]):
        _STREETS_BY_FIRST.setdefault(_form, []).append((_form,) + _street[1:])


@dataclass(frozen=True, slots=True)
class Municipality:
    """A municipal unit (OKTMO prefix code) or one of Kirov's city districts (``33701-<slug>``)."""

    code: str
    oktmo: str
    name: str
    short_name: str
    adjective: str
    kind: str
    parent_code: str | None
    admin_centre: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.short_name, "oktmo": self.oktmo, "code": self.code}


@dataclass(frozen=True, slots=True)
class Place:
    """A settlement of the gazetteer, or a curated Kirov locality (``type`` ``мкр``)."""

    oktmo: str
    type: str
    name: str
    poselenie: str
    municipality_code: str
    words: tuple[str, ...]
    ordinary: bool
    """Some word of the name is an ordinary word or a person's name: needs context."""
    major: bool
    """A town, an urban-type settlement or a curated Kirov locality."""
    lookalike: bool = False
    """Some word of the name is an inflected form of an ordinary word («Добра» ~ «доброе», «Черезы» ~ «через»)."""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "oktmo": self.oktmo}


@dataclass(slots=True)
class PlaceResult:
    """The resolved place of a text (both ``None`` when the text names none)."""

    municipality: Municipality | None = None
    settlement: Place | None = None
    confidence: float = 0.0
    words: list[str] = field(default_factory=list)
    weak: bool = False
    """Only weak evidence (a central Kirov street name): a known source municipality should win."""
    note: str = ""
    key: str | None = None
    """The most specific place named, for duplicate detection: a curated Kirov place id
    («kirov-komintern»), a Kirov locality («kirov-filejka») or a village's OKTMO; None for a
    town or district only (too coarse to say two posts are about one spot)."""
    address: str | None = None
    """Street, house number or landmark (``ул. Ленина, 15``): never a settlement."""
    other_region: bool = False
    """The text names a city or region outside the Kirov region (and no Kirov place)."""


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е")


def _stem(word: str) -> str | None:
    """Strip up to two final vowels/й/ь: «кумены» → «кумен»; None when too short to trust."""
    stem = word
    for _ in range(2):
        if stem and stem[-1] in _NAME_VOWELS:
            stem = stem[:-1]
    return stem if len(stem) >= 4 else None


@lru_cache(maxsize=morph.WORD_CACHE_ENTRIES)
def _token_keys(low: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """Lemma keys of a token and, for words the dictionary does not know, its candidate stems."""
    low = _fold(low)
    keys = morph.lemmas(low)
    stems: tuple[str, ...] = ()
    if not morph.is_known(low) and len(low) >= 3:
        stems = tuple(low[:k] for k in range(len(low), max(3, len(low) - 4), -1))
        # short names: «унях» → «уни», «тужe» → «тужа»
        keys = keys | _rebuilt(low)
    return keys, stems


def _keys_match(low: str, name_keys: frozenset[str]) -> bool:
    """Whether a word form matches a name's word (its keys: lemmas, ``~stem``): a shared lemma,
    or for a word the dictionary does not know, a stem of it that is the name's."""
    keys, stems = _token_keys(low)
    if not keys.isdisjoint(name_keys):
        return True
    return bool(stems) and any(("~" + s) in name_keys for s in stems)


_KIROV_INSTITUTIONS = _TOWN_INSTITUTIONS | {
    "драмтеатр", "онкодиспансер", "диспансер", "зоопарк", "филармония", "аэропорт", "цирк", "планетарий",
}  # fmt: skip
"""Institutions a «Кировский …» one is the city of Kirov's (the region's are in Kirov too)."""


_V = TypeVar("_V")


def _remember(cache: dict[str, _V], key: str, value: _V) -> None:
    """Store a per-word-form result, starting the cache afresh once it holds
    :data:`morph.WORD_CACHE_ENTRIES` forms (memory stays bounded on a stream of new words)."""
    if len(cache) >= morph.WORD_CACHE_ENTRIES:
        cache.clear()
    cache[key] = value


def _institution_after(tokens: Sequence[Token], i: int, institutions: frozenset[str]) -> frozenset[str]:
    """The institution (its lemma keys among ``institutions``) whose noun follows the adjective
    at token ``i``, maybe after another adjective, within the phrase («Кировский драмтеатр»,
    «Орловский краеведческий музей»); empty when none does."""
    for j in (i + 1, i + 2):
        if j >= len(tokens) or tokens[j - 1].punct_after:
            break
        found = _token_keys(tokens[j].low)[0] & institutions
        if found:
            return found
        if not tokens[j].low.endswith(_ADJ_ENDINGS):
            break
    return frozenset()


def _near_not_in(tokens: Sequence[Token], match: _Match) -> bool:
    """The name follows «под» («под Слободским», «деревня под Котельничем»): near the town."""
    return match.start > 0 and tokens[match.start - 1].low == "под" and not match.marker


def _may_be_rebuilt(tokens: Sequence[Token], i: int) -> bool:
    """A capitalised form of an everyday word after a preposition of place inside a sentence may
    be a short name's case form: «в Туже» is Тужа, «до Колобова» is Колобово (not «дворнику
    Николаю», «Обрыв Гончарова», «НА ЛЕНИНА», «у Советской»)."""
    tok = tokens[i]
    if i == 0 or tok.sent_start or tokens[i - 1].low not in _PLACE_PREPOSITIONS:
        return False
    # an adjective's form is a street's («у Советской»), not a village's
    return tok.is_capitalized and not tok.text.isupper() and not tok.low.endswith(_ADJ_ENDINGS)


def _rebuilt(low: str) -> frozenset[str]:
    """Nominatives a short name's case form may come from: «унях» → «уни», «туже» → «тужа»."""
    rebuilt: set[str] = set()
    for ending in _CASE_ENDINGS:
        if low.endswith(ending) and len(low) - len(ending) >= 2:
            base = low[: len(low) - len(ending)]
            rebuilt.update(base + nom for nom in _NOM_ENDINGS)
    return frozenset(rebuilt)


class Gazetteer:
    """Municipalities and settlements indexed for matching; build once (``Gazetteer.load()``)."""

    def __init__(self, municipalities: Sequence[Municipality], places: Sequence[Place]) -> None:
        self.municipalities: dict[str, Municipality] = {m.code: m for m in municipalities}
        okrugs = {
            m.admin_centre: m.code for m in municipalities if m.kind == "urban_okrug" and m.admin_centre
        }
        self.centre_okrug: dict[str, str] = {
            m.code: okrugs[m.admin_centre]
            for m in municipalities
            if m.kind == "municipal_district" and m.admin_centre in okrugs
        }
        """A district whose centre is a town of its own (an urban okrug): Слободской район -> город
        Слободской, whose institutions («Слободской водоканал») stand in the town."""
        self.okrug_district: dict[str, str] = {
            okrug: district for district, okrug in self.centre_okrug.items()
        }
        """The district around a town of its own: город Слободской -> Слободской район."""
        self.places = list(places)
        self.name_keys: dict[tuple[str, ...], list[frozenset[str]]] = {}
        self.by_lemma: dict[str, list[Place]] = defaultdict(list)
        self.by_stem: dict[str, list[Place]] = defaultdict(list)
        self.same_name: dict[tuple[str, ...], list[Place]] = defaultdict(list)
        self.by_oktmo: dict[str, Place] = {}
        self.joined: dict[str, list[Place]] = defaultdict(list)
        """Names of several words or with a hyphen written as one word, as in a hashtag
        («#вятскиеполяны», «#кировочепецк», «#белаяхолуница»)."""
        for place in self.places:
            self.same_name[place.words].append(place)
            if len(place.words) > 1 or "-" in place.words[0]:
                self.joined["".join(place.words).replace("-", "")].append(place)
            if place.type != "мкр":
                self.by_oktmo.setdefault(place.oktmo, place)
        for words in self.same_name:
            word_keys = [self._name_word_keys(w) for w in words]
            self.name_keys[words] = word_keys
            group = self.same_name[words]
            for key in word_keys[0]:
                if key not in ("ст", "м"):
                    self.by_lemma[key].extend(group)
            stem = _stem(words[0])
            if stem:
                self.by_stem[stem].extend(group)
        self.district_stems: dict[str, list[str]] = defaultdict(list)
        for m in municipalities:
            if m.adjective and m.kind in ("municipal_district", "city_district_of_kirov"):
                self.district_stems[_fold(m.adjective)[:-2]].append(m.code)
        self.poselenie_stems: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for place in self.places:
            if place.poselenie and place.poselenie.endswith(("ское", "цкое", "ской")):
                self.poselenie_stems[_fold(place.poselenie)[:-2]].add(
                    (place.municipality_code, place.poselenie)
                )
        log.debug("gazetteer: %d municipalities, %d places", len(self.municipalities), len(self.places))

    @staticmethod
    def _name_word_keys(word: str) -> frozenset[str]:
        # guessed lemmas of unknown names («Черезы» → «через») would match everyday words: the stem does it
        keys = set(morph.lemmas(word)) if morph.is_known(word) else set()
        keys.add(word)
        stem = _stem(word)
        return frozenset(keys | ({"~" + stem} if stem else set()))

    @classmethod
    def load(cls, directory: Path | str | None = None) -> Gazetteer:
        """Read ``municipalities.csv`` and ``settlements.csv`` from the reference directory."""
        directory = Path(directory) if directory else REFERENCE_DIR
        muni_path, settle_path = directory / "municipalities.csv", directory / "settlements.csv"
        for path in (muni_path, settle_path):
            if not path.exists():
                raise FileNotFoundError(f"gazetteer file missing: {path}")
        municipalities = list(_read_municipalities(muni_path))
        places = list(_read_settlements(settle_path, {m.code for m in municipalities}))
        places.extend(_kirov_localities(places))
        by_oktmo = {p.oktmo: p for p in places}
        for alias, oktmo in ALIASES:
            target = by_oktmo.get(oktmo)
            if target is not None:
                places.append(
                    Place(
                        oktmo,
                        target.type,
                        target.name,
                        target.poselenie,
                        target.municipality_code,
                        (_fold(alias),),
                        ordinary=False,
                        major=True,
                    )
                )
        return cls(municipalities, places)

    def municipality(self, code: str | None) -> Municipality | None:
        return self.municipalities.get(code) if code else None

    def city_district_parent(self, code: str) -> str:
        """``33701-leninsky`` → ``33701``; other codes unchanged."""
        m = self.municipalities.get(code)
        return m.parent_code if m and m.parent_code else code


def _read_municipalities(path: Path) -> Iterable[Municipality]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = (row.get("code") or row.get("oktmo_prefix") or "").strip()
            if not code:
                continue
            yield Municipality(
                code=code,
                oktmo=(row.get("oktmo") or code[:5]).strip()[:11],
                name=(row.get("name") or row.get("name_oktmo_2016") or "").strip(),
                short_name=(row.get("short_name") or row.get("name") or "").strip(),
                adjective=(row.get("adjective") or "").strip(),
                kind=(row.get("kind") or "").strip(),
                parent_code=(row.get("parent_code") or "").strip()
                or (KIROV if code.startswith(KIROV + "-") else None),
                admin_centre=(row.get("admin_centre") or "").strip(),
            )


def _is_ordinary(words: tuple[str, ...]) -> bool:
    """Whether the name reads as ordinary words or a person's name («Бор», «Большая Гора», «Иваново»)."""
    return all(morph.is_common_word(w) or _is_person_name(w) for w in words)


@lru_cache(maxsize=20_000)
def _is_lookalike(word: str) -> bool:
    if not morph.is_known(word):
        return False
    for parse in morph.analyzer().parse(word):
        grammemes = parse.tag.grammemes
        if (
            parse.score >= 0.01
            and not (grammemes & morph.PROPER_GRAMMEMES)
            and _fold(parse.normal_form) != word
        ):
            return True
    return False


def _place_order(place: Place) -> tuple[str, str, str, str]:
    """A fixed order of places (by OKTMO, then municipality, type and name)."""
    return place.oktmo, place.municipality_code, place.type, place.name


def _distinct(places: Iterable[Place]) -> list[Place]:
    """Places without repeats (one per settlement and municipality), in order."""
    return list({p.oktmo + p.municipality_code: p for p in places}.values())


def _is_everyday(match: _Match) -> bool:
    """A name in lower case whose words are forms of everyday words («в нём», «был»)."""
    return not match.capital and any(_is_lookalike(_fold(w)) for w in match.surface.lower().split())


def _is_caseless(tokens: Sequence[Token]) -> bool:
    """Whether the text's words are all in lower case or all in capitals (at least three words)."""
    words = 0
    lower = upper = True
    for tok in tokens:
        text = tok.text
        if len(text) > 1 and text[0].isalpha():
            lower = lower and text.islower()
            upper = upper and text.isupper()
            if not (lower or upper):
                return False  # most texts: their first word has a capital and small letters
            words += 1
    return words >= 3


@lru_cache(maxsize=20_000)
def _is_first_name(word: str) -> bool:
    """A first name's form («Ивана», «Карла», «Степана»), not a surname or a place."""
    if not morph.is_known(word):
        return False
    parses = morph.analyzer().parse(word)
    return any("Name" in p.tag.grammemes for p in parses if p.score >= 0.05)


@lru_cache(maxsize=20_000)
def _is_person_name(word: str) -> bool:
    if not morph.is_known(word):
        return False  # guessed parses of unknown words say nothing
    parses = morph.analyzer().parse(word)
    grams = [p.tag.grammemes for p in parses if p.score >= 0.05]
    has_person = any(g & {"Name", "Surn", "Patr"} for g in grams)
    has_geo = any("Geox" in g for g in grams)
    return has_person and not has_geo


def _read_settlements(path: Path, municipality_codes: set[str]) -> Iterable[Place]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            oktmo = (row.get("oktmo") or "").strip()
            name = (row.get("name") or "").strip()
            if not oktmo or not name:
                continue
            code = (row.get("municipality_code") or oktmo[:5]).strip()
            if code not in municipality_codes:
                code = oktmo[:5]
            words = tuple(_fold(w) for w in re.findall(r"[А-Яа-яЁё0-9]+(?:-[А-Яа-яЁё0-9]+)*", name))
            if not words or words[0].isdigit() or len(words) > 4:
                continue  # «Четвертое отделение психоневрологического диспансера» is never written in posts
            type_abbr = (row.get("type_abbr") or row.get("type") or "").strip()
            yield Place(
                oktmo=oktmo,
                type=type_abbr,
                name=name,
                poselenie=(row.get("poselenie") or "").strip(),
                municipality_code=code,
                words=words,
                ordinary=_is_ordinary(words),
                major=type_abbr in ("г", "пгт"),
                lookalike=any(_is_lookalike(w) for w in words),
            )


def _kirov_localities(settlements: Sequence[Place]) -> Iterable[Place]:
    in_kirov = {p.words: p for p in settlements if p.municipality_code == KIROV}
    for name, slug, needs_marker in KIROV_LOCALITIES:
        words = tuple(_fold(w) for w in name.split())
        village = in_kirov.get(words)
        yield Place(
            oktmo=village.oktmo if village else KIROV_CITY_OKTMO,
            type=village.type if village else "мкр",
            name=name,
            poselenie="",
            municipality_code=f"{KIROV}-{slug}",
            words=words,
            ordinary=needs_marker,
            major=True,
        )


@dataclass(slots=True)
class _Match:
    words: tuple[str, ...]
    start: int
    end: int
    candidates: list[Place]
    marker: str | None
    capital: bool
    sent_start: bool
    surface: str
    header: bool = False
    """The name opens the post and stands alone («Великорецкое. …», «Бор: …»)."""
    sent_header: bool = False
    """The name opens a sentence and stands alone («… Луза, ул. Маяковского», «… Слободской,
    Советская 80»)."""
    joined: bool = False
    """A name of several words written as one («#вятскиеполяны»): no word of the language."""
    caseless: bool = False
    """A town's name in a text all in lower or all in upper case, where case says nothing: it
    counts as capitalised, and as a heading when it opens the text («луза остановили ремонт»)."""


_KIND_RANK = {"street": 3, "landmark": 3, "microdistrict": 2}
_PLACE_PREPOSITIONS = frozenset(
    {"на", "в", "во", "у", "возле", "около", "напротив", "за", "рядом", "близ", "вдоль", "по", "до", "от"}
)
_PLACE_CONTEXT_LEMMAS = _STREET_BEFORE | frozenset({"район", "микрорайон", "мкр", "мкрн", "м-н", "слобода"})


@dataclass(frozen=True, slots=True)
class KirovPlace:
    """A curated place inside the city of Kirov (``data/kirov_places.yaml``)."""

    id: str
    kind: str
    """``street``, ``microdistrict`` or ``landmark``."""
    municipality_code: str
    """The city district, ``33701-<slug>``."""
    name: str
    context: bool
    """The name is also an ordinary word: it counts only after a preposition or marker."""
    town: str | None = None
    """Id of a locality that must be named as well (streets of Нововятск)."""


class KirovPlaces:
    """Matcher of curated Kirov streets, microdistricts and landmarks, in any grammatical case."""

    def __init__(self, places: Sequence[tuple[KirovPlace, Sequence[str]]]) -> None:
        self.names: list[tuple[KirovPlace, tuple[str, ...], list[frozenset[str]]]] = []
        self.by_first: dict[str, list[int]] = defaultdict(list)
        for place, names in places:
            for name in names:
                words = tuple(_fold(w) for w in re.findall(r"[А-Яа-яЁёA-Za-z0-9]+(?:-[А-Яа-яЁё0-9]+)*", name))
                if not words:
                    raise ValueError(f"kirov place {place.id}: empty name {name!r}")
                keys = [Gazetteer._name_word_keys(w) for w in words]
                self.names.append((place, words, keys))
                for key in keys[0]:
                    self.by_first[key].append(len(self.names) - 1)
        self._starts: dict[str, tuple[int, ...]] = {}

    def is_street(self, low: str) -> bool:
        """Whether a word form is a form of a one-word curated street's name («Ленина»,
        «Московской»)."""
        for j in self._starting(low):
            place, words, word_keys = self.names[j]
            if place.kind == "street" and len(words) == 1 and _keys_match(low, word_keys[0]):
                return True
        return False

    def _starting(self, low: str) -> tuple[int, ...]:
        """Indexes of the names a word form may start, longest first (cached per word form;
        for almost every word the answer is empty)."""
        cached = self._starts.get(low)
        if cached is None:
            cached = self._collect_starting(low)
            _remember(self._starts, low, cached)
        return cached

    def _collect_starting(self, low: str) -> tuple[int, ...]:
        """:meth:`_starting`, not cached."""
        keys, stems = _token_keys(low)
        by_first = self.by_first
        if by_first.keys().isdisjoint(keys) and not (stems and any(("~" + s) in by_first for s in stems)):
            return ()  # most words
        idxs = {j for k in keys for j in by_first.get(k, ())}
        idxs.update(j for s in stems for j in by_first.get("~" + s, ()))
        return tuple(sorted(idxs, key=lambda j: -len(self.names[j][1])))

    def may_start(self, low: str) -> bool:
        """Whether a word form may start a curated name (:meth:`find` looks at no other word)."""
        return not (len(low) < 2 or low.isdigit()) and bool(self._collect_starting(low))

    @classmethod
    def load(cls, path: Path | str | None = None) -> KirovPlaces:
        """Read the curated list (``data/kirov_places.yaml`` by default)."""
        import yaml

        path = Path(path) if path else KIROV_PLACES_PATH
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries: list[tuple[KirovPlace, Sequence[str]]] = []
        ids: set[str] = set()
        for raw in data.get("places") or ():
            missing = {"id", "kind", "district", "names"} - set(raw)
            if missing or raw["kind"] not in _KIND_RANK:
                raise ValueError(
                    f"{path}: bad place entry {raw!r} (missing {sorted(missing)} or unknown kind)"
                )
            if raw["id"] in ids:
                raise ValueError(f"{path}: duplicate place id {raw['id']!r}")
            ids.add(raw["id"])
            place = KirovPlace(
                id=raw["id"],
                kind=raw["kind"],
                municipality_code=f"{KIROV}-{raw['district']}",
                name=raw["names"][0],
                context=bool(raw.get("context", False)),
                town=raw.get("town"),
            )
            entries.append((place, list(raw["names"])))
        unknown_towns = {p.town for p, _ in entries if p.town and p.town not in ids}
        if unknown_towns:
            raise ValueError(f"{path}: unknown town ids {sorted(unknown_towns)}")
        return cls(entries)

    def find(
        self, tokens: Sequence[Token], starts: Iterable[int] | None = None
    ) -> list[tuple[KirovPlace, int, int]]:
        """Curated places the text names, with their token spans, in text order. ``starts``: the
        indexes of the tokens that may start one (:meth:`may_start`), when the caller knows them."""
        found: list[tuple[KirovPlace, int, int]] = []
        n = len(tokens)
        caseless: bool | None = None
        if starts is None:
            starts = [
                i
                for i, t in enumerate(tokens)
                if len(t.low) > 1 and not t.low.isdigit() and self._starting(t.low)
            ]
        resume = 0  # the token after the last place found
        for i in starts:
            if i < resume:
                continue
            low = tokens[i].low
            candidates = self._starting(low)
            if not candidates or len(low) < 2 or low.isdigit():
                continue
            best: tuple[KirovPlace, int] | None = None
            for j in candidates:
                place, words, word_keys = self.names[j]
                end = i + len(words)
                if best is not None and end < best[1]:
                    break
                if end > n or not all(
                    _keys_match(tokens[i + k].low, word_keys[k]) for k in range(len(words))
                ):
                    continue
                if place.context and not self._in_context(tokens, i, end):
                    continue
                if place.context and place.kind != "landmark" and not tokens[i].is_capitalized:
                    # a lower-case ordinary word («в пригородных электричках», «на московской
                    # трассе») names the street only with a street word or a house number
                    caseless = _is_caseless(tokens) if caseless is None else caseless
                    if not caseless and not _marked_as_street(tokens, i, end):
                        continue
                best = (place, end)
                break
            if best is not None:
                found.append((best[0], i, best[1]))
                resume = best[1]
        named = {p.id for p, _s, _e in found}
        return [(p, s, e) for p, s, e in found if not p.town or p.town in named]

    @staticmethod
    def _in_context(tokens: Sequence[Token], start: int, end: int) -> bool:
        if start > 0:
            prev = tokens[start - 1]
            if prev.low in _PLACE_PREPOSITIONS or prev.low in _PLACE_CONTEXT_LEMMAS:
                return True
            if _token_keys(prev.low)[0] & _PLACE_CONTEXT_LEMMAS:
                return True
        if end < len(tokens) and _token_keys(tokens[end].low)[0] & (_STREET_AFTER | {"район", "микрорайон"}):
            return True
        return end - start > 1 and all(t.is_capitalized for t in tokens[start:end])

    def best(self, tokens: Sequence[Token], starts: Iterable[int] | None = None) -> KirovPlace | None:
        """The most specific curated place of the text (a street or landmark over a microdistrict);
        ``starts`` as for :meth:`find`."""
        found = self.find(tokens, starts)
        if not found:
            return None
        return max(found, key=lambda f: (_KIND_RANK[f[0].kind], -f[1]))[0]


_Group = tuple[tuple[str, ...], tuple[Place, ...]]
"""A gazetteer name (its words) and the places of that name."""


@dataclass(frozen=True, slots=True)
class _WordRoles:
    """What a word form can start or be, decided from the word alone (see :meth:`PlaceResolver._roles`)."""

    name: bool
    """It starts a settlement's name (``groups``) or is a joined name (``joined``)."""
    groups: tuple[_Group, ...]
    """The names the word may start, longest first (none for a number or a single letter)."""
    longer: tuple[tuple[tuple[str, ...], tuple[Place, ...], tuple[frozenset[str], ...]], ...]
    """Those of several words, longest first, with their words' keys: the next words decide."""
    second: frozenset[str]
    """The keys of the second words of those: a next word that matches none starts none of them."""
    word: tuple[str, ...] | None
    """The first one-word name: the match's words when no longer name matches (None: no such name)."""
    candidates: tuple[Place, ...]
    """The candidates of a match of one word."""
    joined: tuple[Place, ...]
    """When the word starts no name: the places of a name of several words written as one
    («#вятскиеполяны»), without repeats."""
    kirov: bool
    """It may start a curated Kirov place's name (:meth:`KirovPlaces.may_start`)."""
    other_region: bool
    """It may name another region (:func:`_may_name_other_region`)."""
    district: bool
    """:meth:`PlaceResolver._districts` looks at it."""
    place_preposition: bool
    """A preposition of place («в», «у», «до»): the next word may be a short name's case form."""
    kirov_word: bool
    """A form of «Киров», «Кирово-Чепецк» or «Вятка» (:data:`_KIROV_WORDS`)."""
    resident: bool
    """It may be a resident's name («кировчане») or «кировский» (its first three letters say so)."""
    address_marker: bool
    """A street marker («ул», «проспект»: :data:`_ADDRESS_MARKERS`)."""


_PLAIN_WORD = _WordRoles(
    False, (), (), frozenset(), None, (), (), False, False, False, False, False, False, False
)
"""A word that starts or is none of these (most words)."""


@dataclass(slots=True)
class _TextRoles:
    """The roles of a text's words (see :meth:`PlaceResolver._text_roles`; read-only once made)."""

    words: list[_WordRoles]
    """Each token's."""
    kirov: list[int]
    """Indexes of the tokens that may start a curated Kirov place's name."""
    other_region: list[int]
    """Indexes of the tokens that may name another region."""
    districts: list[int]
    """Indexes of the tokens :meth:`PlaceResolver._districts` looks at."""
    settlements: list[int]
    """Indexes of the tokens that may start a settlement's name: those that start one, and those
    after a preposition of place."""
    kirov_words: list[int]
    """Indexes of the forms of «Киров», «Кирово-Чепецк», «Вятка»."""
    residents: list[int]
    """Indexes of the tokens that may be a resident's name or «кировский»."""
    address_markers: list[int]
    """Indexes of the street markers (:func:`street_address`)."""


class PlaceResolver:
    """Resolve the place of a tokenised text against a :class:`Gazetteer` (thread-safe, stateless)."""

    def __init__(self, gazetteer: Gazetteer, kirov: KirovPlaces | None = None) -> None:
        self.gaz = gazetteer
        self.kirov = kirov if kirov is not None else KirovPlaces.load()
        self._groups_cache: dict[str, tuple[_Group, ...]] = {}
        self._roles_cache: dict[str, _WordRoles] = {}
        self._rebuilt_cache: dict[str, tuple[tuple[tuple[str, ...], tuple[Place, ...]], ...]] = {}
        stems = set(gazetteer.district_stems) | set(gazetteer.poselenie_stems)
        self._district_adjectives = frozenset(stem + ending for stem in stems for ending in _ADJ_ENDINGS)
        """Forms of a district's or poselenie's adjective stem plus an adjective ending («слободской»,
        «лузского»)."""
        self._district_words = self._district_adjectives | frozenset(
            [*_ABBREVIATED_TOWNS, *_ABBREVIATED_DISTRICTS, "зато"]
        )
        """Every word form :meth:`_districts` looks at: those, an abbreviation («кчр», «кч»), «зато»."""
        cities = _other_city_index()
        self._start_keys = (
            frozenset(gazetteer.by_lemma)
            | frozenset(self.kirov.by_first)
            | frozenset(cities)
            | _OTHER_ADJECTIVES
            | _KIROV_WORDS
        )
        """Lemmas that start a settlement's, a curated Kirov place's or another region's name, or
        are Kirov's."""
        self._start_stems = frozenset(gazetteer.by_stem) | frozenset(
            key[1:] for key in self.kirov.by_first if key.startswith("~")
        )
        """Stems that start a settlement's or a curated Kirov place's name."""
        self._special_words = (
            self._district_words
            | frozenset(gazetteer.joined)
            | frozenset(cities)
            | _NIZHNY
            | _HEADING_CITIES
            | _OTHER_ADJECTIVES
            | _PLACE_PREPOSITIONS
            | _ADDRESS_MARKERS
        )
        """Word forms with a role whatever their lemmas: a district's word, a joined name, another
        region's city or adjective, «Нижний», a city heading a post, a preposition of place, a
        street marker."""
        self._hyphenated_ends = tuple(
            {
                "-" + words[0].partition("-")[2]
                for names in cities.values()
                for words in names
                if "-" in words[0]
            }
        )
        """The ends of other regions' hyphenated names («-на-дону»): a form of one ends so."""

    # ------------------------------------------------------------------ evidence
    def _marker(self, tokens: Sequence[Token], i: int) -> str | None:
        """Type marker right before token ``i`` (skipping «в», «во», «на»)."""
        j = i - 1
        if j < 0:
            return None
        tok = tokens[j]
        if tok.low in _LETTER_MARKERS:
            if tok.dot_after or tok.low in _LETTERS_WITHOUT_DOT:
                return _LETTER_MARKERS[tok.low]
            return None
        for lemma in _token_keys(tok.low)[0]:
            if lemma in _MARKER_LEMMAS:
                return _MARKER_LEMMAS[lemma]
        return None

    def _is_street(self, tokens: Sequence[Token], start: int, end: int) -> bool:
        """Whether the name is a street's: a street word right before it («ул. Луговая», «улица
        Луговая») or right after it («Луговая улица»), a house number after it («Ленина 148»), or
        a street's form after «на»/«по» («на Московской», «по Кирова»). Punctuation between them
        says otherwise: «Вятские Поляны, набережная: …», «Жители Кирово-Чепецка, улица Сосновая»."""
        if _marked_as_street(tokens, start, end):
            return True
        if self._street_before_and(tokens, start, end):
            return True
        if _in_street_list(tokens, start) and not self._is_major(tokens[start].low):
            return True  # not «Улица Полевая, Кумёны»: a town after its street
        if end - start == 1 and start > 0:
            prev = tokens[start - 1]
            if prev.low in _STREET_PREPOSITIONS and not prev.punct_after:
                return bool(_STREET_FORM.fullmatch(tokens[start].low))
            if not prev.punct_after and _STREET_FORM.fullmatch(tokens[start].low):
                if _token_keys(prev.low)[0] & _CROSSING_LEMMAS:
                    return True  # «на перекрёстке Московской …», «угол Советской»
                if prev.is_capitalized and not prev.sent_start and _is_first_name(prev.low):
                    return True  # «ул. Ивана Попова», «перекрёсток Карла Маркса»: a person's street
                if prev.low in _STREET_LINKS and self.kirov.is_street(tokens[start].low):
                    # «у Комсомольской», «от Воровского до Ленина»: Kirov's streets (not a town's
                    # form: «у Кирова», «до Кирова»)
                    return not self._is_major(tokens[start].low)
        return False

    def _street_before_and(self, tokens: Sequence[Token], start: int, end: int) -> bool:
        """A crossing: a street's form, then «и» or a dash, then one of Kirov's streets or a person's
        first name («Комсомольской и Карла Маркса», «Ленина — Московской»; not «Слободского и
        Котельнича»); or a street's form after one of Kirov's streets and a dash («Ленина —
        Московской»)."""
        if end - start != 1:
            return False
        name = tokens[start]
        if not _STREET_FORM.fullmatch(name.low) or self._is_major(name.low):
            return False
        if start > 0 and tokens[start - 1].dash_after and self._crossing_street(tokens[start - 1]):
            return True
        if name.dash_after and end < len(tokens):
            return self._crossing_street(tokens[end])
        if name.punct_after or end + 1 >= len(tokens) or tokens[end].low != "и":
            return False
        return self._crossing_street(tokens[end + 1])

    def _crossing_street(self, tok: Token) -> bool:
        """One of Kirov's streets, or a person's first name starting a street's name («Карла»)."""
        return self.kirov.is_street(tok.low) or (tok.is_capitalized and _is_first_name(tok.low))

    def _is_major(self, low: str) -> bool:
        """Whether a word form may start the name of a town or a district's centre."""
        return any(p.major for _, places in self._name_groups(low) for p in places)

    def _districts(
        self, tokens: Sequence[Token], roles: _TextRoles
    ) -> tuple[list[tuple[str, int]], set[int], list[tuple[str, str]]]:
        """Districts named in the text (code, token index), consumed token indexes, named poselenies."""
        found: list[tuple[str, int]] = []
        consumed: set[int] = set()
        poselenies: list[tuple[str, str]] = []
        n = len(tokens)
        for i in roles.districts:  # most words: no district, poselenie or abbreviation
            tok = tokens[i]
            low = tok.low
            town = _ABBREVIATED_TOWNS.get(low)
            if town and not tok.text.isupper():
                # «кч» counts only where the text's case says nothing and a preposition of place
                # comes before it («в кч на ул мира»), not «кч какой-то странный»
                after_preposition = i > 0 and tokens[i - 1].low in ("в", "во", "из", "до", "под")
                town = town if after_preposition and _is_caseless(tokens) else None
            if low in _ABBREVIATED_DISTRICTS or town:
                found.append((_ABBREVIATED_DISTRICTS.get(low) or town or "", i))
                consumed.add(i)
                continue
            if low == "зато" and (
                tok.text == "ЗАТО" or (i + 1 < n and tokens[i + 1].low.startswith("первомайск"))
            ):
                # «ЗАТО Первомайский»; the conjunction «зато» («зато сам») is no place
                found.append(("33787", i))
                consumed.add(i)
                if i + 1 < n:
                    consumed.add(i + 1)
                continue
            if low not in self._district_adjectives:
                continue
            nxt = tokens[i + 1].low if i + 1 < n else ""
            nxt2 = tokens[i + 2].low if i + 2 < n else ""
            next_keys = _token_keys(nxt)[0] if nxt else frozenset()
            prev_keys = _token_keys(tokens[i - 1].low)[0] if i > 0 else frozenset()
            district_word = bool(next_keys & _DISTRICT_WORDS) or bool(prev_keys & {"район"})
            for cut in (2, 3):
                stem, ending = low[:-cut], low[-cut:]
                if ending not in _ADJ_ENDINGS or len(stem) < 4:
                    continue
                codes = self.gaz.district_stems.get(stem)
                institution = (
                    _institution_after(tokens, i, _DISTRICT_INSTITUTIONS)
                    if codes and not district_word
                    else frozenset()
                )
                if codes and (district_word or (institution and len(codes) == 1)):
                    # «Первомайский район» of Kirov vs none other; «Октябрьский район» likewise
                    if "муниципальный" in next_keys and nxt2:
                        consumed.add(i + 2)
                    if not district_word and institution & _TOWN_INSTITUTIONS:
                        codes = [self.gaz.centre_okrug.get(c, c) for c in codes]
                    found.extend((c, i) for c in codes)
                    consumed.update({i, i + 1})
                    break
                pos = self.gaz.poselenie_stems.get(stem)
                if pos and (next_keys & _POSELENIE_WORDS):
                    poselenies.extend(pos)
                    consumed.update({i, i + 1})
                    break
        return found, consumed, poselenies

    def _rebuilt_groups(self, low: str) -> tuple[tuple[tuple[str, ...], tuple[Place, ...]], ...]:
        """One-word names whose case form a known word's form may be («туже» → «Тужа»), for a
        capitalised word inside a sentence (cached per word form)."""
        cached = self._rebuilt_cache.get(low)
        if cached is None:
            if not morph.is_known(_fold(low)):
                cached = ()  # unknown words are rebuilt by _token_keys already
            else:
                groups: dict[tuple[str, ...], list[Place]] = {}
                for key in _rebuilt(_fold(low)):
                    for place in self.gaz.by_lemma.get(key, ()):
                        if len(place.words) == 1:
                            groups.setdefault(place.words, []).append(place)
                cached = tuple((w, tuple(p)) for w, p in sorted(groups.items()))
            _remember(self._rebuilt_cache, low, cached)
        return cached

    def _name_groups(self, low: str) -> tuple[_Group, ...]:
        """Gazetteer names a word form may start, longest first (cached per word form)."""
        cached = self._groups_cache.get(low)
        if cached is None:
            cached = self._collect_name_groups(low)
            _remember(self._groups_cache, low, cached)
        return cached

    def _collect_name_groups(self, low: str) -> tuple[_Group, ...]:
        """Gazetteer names a word form may start, longest first: those one of its lemmas starts,
        then those one of its stems starts (for words the dictionary does not know). The word's
        form always matches the first word of each name (see :meth:`_word_matches`)."""
        keys, stems = _token_keys(low)
        by_lemma, by_stem = self.gaz.by_lemma, self.gaz.by_stem
        if by_lemma.keys().isdisjoint(keys) and not (stems and any(stem in by_stem for stem in stems)):
            return ()  # most words
        groups: dict[tuple[str, ...], list[Place]] = {}
        for key in keys:
            for place in by_lemma.get(key, ()):
                groups.setdefault(place.words, []).append(place)
        for stem in stems:
            for place in by_stem.get(stem, ()):
                groups.setdefault(place.words, []).append(place)
        # in an order of their own, not of the keys' set (which Python's string hashing varies by
        # process): longest first, then by name; each name's places by OKTMO
        return tuple(
            (w, tuple(sorted(p, key=_place_order)))
            for w, p in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0]))
        )

    def _single_name(self, low: str, singles: Sequence[_Group]) -> tuple[str, ...] | None:
        """The one-word name a word form is taken for among those it may start: its own form
        («бурдята» is Бурдята, not Бурденок its stem also starts), else one its form matches, else
        the first."""
        names = [words for words, _ in singles]
        if not names:
            return None
        if (low,) in names:
            return (low,)
        return next((w for w in names if self._word_matches(low, w, 0, False)), names[0])

    def _text_roles(self, tokens: Sequence[Token]) -> _TextRoles:
        """The roles of the text's words: one cached look-up per word, and the few words each
        step of the resolution looks at."""
        cache = self._roles_cache
        words = [cache.get(tok.low) or self._roles(tok.low) for tok in tokens]
        text = _TextRoles(words, [], [], [], [], [], [], [])
        settlements = text.settlements
        for i, roles in enumerate(words):
            if roles is _PLAIN_WORD:
                continue
            if roles.name and not (settlements and settlements[-1] == i):
                settlements.append(i)
            if roles.place_preposition and i + 1 < len(words):
                settlements.append(i + 1)
            if roles.kirov:
                text.kirov.append(i)
            if roles.other_region:
                text.other_region.append(i)
            if roles.district:
                text.districts.append(i)
            if roles.kirov_word:
                text.kirov_words.append(i)
            if roles.resident:
                text.residents.append(i)
            if roles.address_marker:
                text.address_markers.append(i)
        return text

    def _roles(self, low: str) -> _WordRoles:
        """What a word form can start or be, decided from the word alone (cached per word form;
        for almost every word :data:`_PLAIN_WORD`): the settlement names it may start and, for a
        one-word name, the match's candidates: the places of that exact name, else those the
        word's form (not only its stem) matches, else all, without repeats («в Ильинске» is
        Ильинск, not a village Ильинское its stem also starts); whether it may start a curated
        Kirov name, name another region, or be a district's word."""
        keys, stems = _token_keys(low)
        if (
            keys.isdisjoint(self._start_keys)
            and not (stems and not self._start_stems.isdisjoint(stems))
            and low not in self._special_words
            and not low.endswith(self._hyphenated_ends)
            and low[:3] not in _OTHER_DEMONYM_STARTS
            and low[:3] not in _DEMONYM_STARTS
        ):  # most words: what each role needs is missing (the checks below would say so, slower)
            _remember(self._roles_cache, low, _PLAIN_WORD)
            return _PLAIN_WORD
        groups = () if low.isdigit() or len(low) < 2 else self._collect_name_groups(low)
        joined_places = None if groups else self.gaz.joined.get(low)
        joined = tuple(_distinct(joined_places)) if joined_places else ()
        kirov = self.kirov.may_start(low)
        other_region = _may_name_other_region(low)
        district = low in self._district_words
        place_preposition = low in _PLACE_PREPOSITIONS
        kirov_word = bool(keys & _KIROV_WORDS)
        resident = low[:3] in _DEMONYM_STARTS
        address_marker = low in _ADDRESS_MARKERS
        if not (
            groups
            or joined
            or kirov
            or other_region
            or district
            or place_preposition
            or kirov_word
            or resident
            or address_marker
        ):
            _remember(self._roles_cache, low, _PLAIN_WORD)
            return _PLAIN_WORD
        longer = tuple(
            (words, places, tuple(self.gaz.name_keys[words])) for words, places in groups if len(words) > 1
        )
        singles = [(words, places) for words, places in groups if len(words) == 1]
        candidates: list[Place] = [p for _, places in singles for p in places]
        exact = [p for p in candidates if p.words == (low,)]
        pool = exact or candidates
        if not exact and len(singles) > 1:
            by_form = [
                p for words, places in singles if self._word_matches(low, words, 0, False) for p in places
            ]
            pool = by_form or pool
        roles = _WordRoles(
            name=bool(groups or joined),
            groups=groups,
            longer=longer,
            second=frozenset().union(*(name_keys[1] for _, _, name_keys in longer)),
            word=self._single_name(low, singles),
            candidates=tuple(_distinct(pool)),
            joined=joined,
            kirov=kirov,
            other_region=other_region,
            district=district,
            place_preposition=place_preposition,
            kirov_word=kirov_word,
            resident=resident,
            address_marker=address_marker,
        )
        _remember(self._roles_cache, low, roles)
        return roles

    def _settlement_matches(
        self, tokens: Sequence[Token], consumed: set[int], roles: _TextRoles
    ) -> list[_Match]:
        """Settlement names in the text, in text order (a street's name is none)."""
        matches: list[_Match] = []
        n = len(tokens)
        caseless: bool | None = None
        resume = 0  # the token after the last match
        for i in roles.settlements:  # most words start no name, and are after no preposition of place
            if i < resume or i in consumed:  # a district's adjective («Слободской район») starts none
                continue
            start = roles.words[i]
            best: _Match | None = None
            if start.groups:
                best = self._name_match(tokens, i, start, consumed)
            elif _may_be_rebuilt(tokens, i) and (rebuilt := self._rebuilt_groups(tokens[i].low)):
                # «в Туже»: a known word's capitalised form may be a short name's case form
                best = self._groups_match(tokens, i, rebuilt, consumed, True)
            elif start.joined:
                matches.append(self._joined_match(tokens, i, start))
            if best is None:
                continue
            if any(p.major for p in best.candidates):
                caseless = _is_caseless(tokens) if caseless is None else caseless
                if caseless:
                    best.capital = best.caseless = True
                    best.header = best.header or best.start == 0
            nxt = best.end + 1
            if nxt < n and tokens[nxt].low[:3] in ("обл", "кра") and _other_region_follows(tokens, nxt - 1):
                continue  # «в Советске Калининградской области»: a namesake in another region
            if not self._is_street(tokens, best.start, best.end):
                matches.append(best)
                resume = best.end
        return matches

    @staticmethod
    def _joined_match(tokens: Sequence[Token], i: int, start: _WordRoles) -> _Match:
        """A name of several words written as one («#вятскиеполяны») at token ``i``."""
        return _Match(
            words=(tokens[i].low,),
            start=i,
            end=i + 1,
            candidates=list(start.joined),
            marker=None,
            capital=True,
            sent_start=tokens[i].sent_start,
            surface=tokens[i].text,
            joined=True,
        )

    def _name_match(
        self, tokens: Sequence[Token], i: int, start: _WordRoles, consumed: set[int]
    ) -> _Match | None:
        """The longest name starting at token ``i`` (not consumed) that the text's words match, with
        all the same-length names they match as candidates."""
        n = len(tokens)
        longer = start.longer if i + 1 < n and _keys_match(tokens[i + 1].low, start.second) else ()
        for words, _places, name_keys in longer:
            end = i + len(words)
            if end > n or (consumed and any(k in consumed for k in range(i + 1, end))):
                continue
            if all(_keys_match(tokens[i + k].low, name_keys[k]) for k in range(1, len(words))):
                return self._groups_match(tokens, i, start.groups, consumed, False)
        if start.word is None:
            return None
        tok = tokens[i]
        return _Match(
            words=start.word,
            start=i,
            end=i + 1,
            candidates=list(start.candidates),
            marker=self._marker(tokens, i),
            capital=tok.is_capitalized,
            sent_start=tok.sent_start,
            surface=tok.text,
            header=i == 0 and tok.punct_after,
            sent_header=tok.sent_start and tok.punct_after,
        )

    def _groups_match(
        self, tokens: Sequence[Token], i: int, groups: Sequence[_Group], consumed: set[int], rebuilt: bool
    ) -> _Match | None:
        """The longest of ``groups`` (names, longest first) the words at token ``i`` match, with all
        the same-length names they match as candidates; ``rebuilt``: names a known word's case form
        was rebuilt to, which match without a check."""
        n = len(tokens)
        best: _Match | None = None
        matched: list[_Group] = []
        for words, places in groups:
            end = i + len(words)
            if end > n or (consumed and any(k in consumed for k in range(i, end))):
                continue
            if best is not None and len(words) < len(best.words):
                break
            if not rebuilt and not all(
                self._word_matches(tokens[i + k].low, words, k) for k in range(len(words))
            ):
                continue
            matched.append((words, places))
            if best is None:
                best = _Match(
                    words=words,
                    start=i,
                    end=end,
                    candidates=[],
                    marker=self._marker(tokens, i),
                    capital=all(t.is_capitalized for t in tokens[i:end]),
                    sent_start=tokens[i].sent_start,
                    surface=" ".join(t.text for t in tokens[i:end]),
                    header=i == 0 and tokens[end - 1].punct_after,
                    sent_header=tokens[i].sent_start and tokens[end - 1].punct_after,
                )
            # same-length names matching the same words («Слободской» town, «Слободские» village)
            best.candidates.extend(places)
        if best is None:
            return None
        written = tuple(t.low for t in tokens[i : best.end])
        exact = [p for p in best.candidates if p.words == written]
        pool = exact or best.candidates
        if not exact and len(matched) > 1 and not rebuilt:
            # «в Ильинске» is Ильинск, not a village Ильинское its stem also starts
            by_form = [
                p
                for words, places in matched
                if all(self._word_matches(tokens[i + k].low, words, k, False) for k in range(len(words)))
                for p in places
            ]
            pool = by_form or pool
        best.candidates = _distinct(pool)
        return best

    @staticmethod
    def _plain_name_counts(match: _Match, cands: Sequence[Place], any_major: bool) -> bool:
        """Whether a name without a type marker or a named district counts as a place."""
        ordinary = all(p.ordinary for p in cands)
        shouted = match.surface.isupper() and not match.caseless
        if not _form_of_name(match):
            return False
        if match.header and match.capital and not shouted:
            if any_major or not all(_is_person_name(w) for w in match.words):
                return True
        if match.sent_header and match.capital and any_major and not shouted:
            return True  # a town heading a sentence («… Луза, ул. Маяковского»), not «Хорошо, …»
        if not ordinary and not any_major and all(p.lookalike for p in cands):
            # «Добра», «Черезы»: forms of everyday words; only a capital inside a sentence counts
            return match.capital and not match.sent_start and not shouted
        if not ordinary:
            # a rare proper name: capitalised, or long enough not to be a typo of something else,
            # and in lower case not a form of an everyday word («в нём» is no «Нема», «был» no «Быль»)
            if match.capital:
                return True
            return (any_major or len(match.words[0]) >= 6) and not _is_everyday(match)
        if len(match.words) > 1 and match.capital and not shouted:
            return True  # «Белая Холуница», «Вятские Поляны»
        if not match.capital or shouted:
            return False
        person = any(_is_person_name(w) for w in match.words)
        if person:
            return any_major  # «Оричи», «Кумёны»; a person's name otherwise
        return not match.sent_start  # «в Бору», not «Бор горит»

    def _word_matches(self, low: str, words: tuple[str, ...], k: int, stems_too: bool = True) -> bool:
        name_keys = self.gaz.name_keys[words][k]
        if stems_too:
            return _keys_match(low, name_keys)
        return not _token_keys(low)[0].isdisjoint(name_keys)

    # ------------------------------------------------------------------ resolution
    def _in_okrug(self, place: Place) -> bool:
        """Whether a place is in a town of its own (an urban okrug, Kirov's city districts too)."""
        m = self.gaz.municipality(self.gaz.city_district_parent(place.municipality_code))
        return place.type == "мкр" or (m is not None and m.kind == "urban_okrug")

    def _in_kirov(self, code: str | None) -> bool:
        return bool(code) and (code == KIROV or self.gaz.city_district_parent(code or "") == KIROV)

    def resolve(self, tokens: Sequence[Token], source_municipality: str | None = None) -> PlaceResult:
        """The most specific place the text names (see :meth:`_resolve_kirov`), its address, or an
        empty result marked ``other_region`` when the text is about another region's city
        (Москва, Казань, «Пермский край»…) and names nothing of the Kirov region explicitly —
        even when its street names also exist in Kirov.
        """
        roles = self._text_roles(tokens)
        other = _other_region_at(tokens, roles.other_region)
        if other is not None and not self._names_kirov(tokens, other[0], roles):
            address = street_address(tokens, markers=roles.address_markers)
            return PlaceResult(note=f"another region: {other[1]}", other_region=True, address=address)
        result = self._resolve_kirov(tokens, source_municipality, roles)
        curated = result.words[0] if result.note.startswith("Kirov ") else None
        result.address = street_address(tokens, curated, roles.address_markers)
        return result

    def _names_kirov(self, tokens: Sequence[Token], other_at: int, roles: _TextRoles) -> bool:
        """The text names the city of Kirov, the region or one of its districts explicitly.

        Names other regions share do not count: «Киров Калужской области» (a Kirov of another
        region), and districts named as in many cities («Ленинский район Ижевска», «Советский
        район Казани»).
        """
        aside = False
        for i in roles.kirov_words:
            if not _other_region_follows(tokens, i + 1):
                if _kirov_mention_is_aside(tokens, i, other_at):
                    aside = True
                    continue
                if aside and other_at < i and not _names_more_after(tokens, i):
                    # «Переехали из Кирова в Казань… Скучаю только по Вятке»: the city the post
                    # already set aside, named again with nothing of it
                    continue
                return True
        if any(
            not tokens[i].low.startswith(_COMMON_DISTRICT_STEMS)
            for _code, i in self._districts(tokens, roles)[0]
        ):
            return True
        return self._names_own_town(tokens, other_at, roles)

    def _names_own_town(self, tokens: Sequence[Token], other_at: int, roles: _TextRoles) -> bool:
        """The post opens with a town of the region (a town or an urban-type settlement), named
        before the other region's city: «Луза, в аптеке нет лекарств. Ближайшая в Котласе», «В
        Белой Холунице на Глазова не вывозят мусор» (a street). A town named later may be an aside
        («Отдыхали в Красной Поляне… #сочи», «не путайте Котельнич и Котельники»); the other
        region's own town or district («Радужный, ХМАО», «Ленинский район Екатеринбурга») does not
        count."""
        for match in self._settlement_matches(tokens, set(), roles):
            if match.start >= other_at:
                break
            if (
                match.capital
                and match.end < other_at
                and all(t.low in _PLACE_OPENERS for t in tokens[: match.start])
                and any(p.major and not p.municipality_code.startswith(KIROV) for p in match.candidates)
                and not tokens[match.start].low.startswith(_COMMON_DISTRICT_STEMS)
                and not _other_region_follows(tokens, match.end)
            ):
                return True
        return False

    def result_key(self, result: PlaceResult) -> str | None:
        """The place key of a resolved result, by the rules of :meth:`place_key` (a village's
        OKTMO; in Kirov the curated place :meth:`resolve` found), without reading the text again."""
        settlement = result.settlement
        if settlement is not None and settlement.oktmo != KIROV_CITY_OKTMO:
            place = self.gaz.by_oktmo.get(settlement.oktmo)
            return None if place is None or place.major else settlement.oktmo
        if result.municipality is None or not self._in_kirov(result.municipality.code):
            return None
        return result.key

    def _resolve_kirov(
        self, tokens: Sequence[Token], source_municipality: str | None = None, roles: _TextRoles | None = None
    ) -> PlaceResult:
        """The most specific place the text names, or an empty result.

        ``source_municipality`` (a municipality code) only breaks ties between same-named
        settlements; it is never returned when the text names no place. A curated Kirov place
        (street, microdistrict, landmark) refines a result in Kirov (or an empty one); a
        street alone is weak evidence unless the source is in Kirov (towns have a «Ленина» too).
        """
        roles = roles if roles is not None else self._text_roles(tokens)
        result = self._resolve_gazetteer(tokens, source_municipality, roles)
        curated = self.kirov.best(tokens, roles.kirov) if self.kirov else None
        if curated is None or not (
            result.municipality is None or result.weak or self._in_kirov(result.municipality.code)
        ):
            result.key = self._key_of(result)
            return result
        named_kirov = result.municipality is not None and not result.weak
        weak = curated.kind == "street" and not named_kirov and not self._in_kirov(source_municipality)
        if weak:
            # a street alone: the city (a source elsewhere wins, as towns have a «Ленина» too)
            return PlaceResult(
                self.gaz.municipality(KIROV),
                None,
                0.4,
                [curated.name],
                weak=True,
                note="Kirov street",
                key=curated.id,
            )
        settlement = result.settlement
        if settlement is None or settlement.municipality_code != curated.municipality_code:
            # a street, landmark or microdistrict is no OKTMO settlement: the settlement is the
            # city itself (the curated name goes to the address)
            settlement = self.gaz.by_oktmo.get(KIROV_CITY_OKTMO)
        code = curated.municipality_code
        if curated.kind == "street":
            # a street crosses city districts: the district only when the text names it
            named = result.municipality.code if named_kirov and result.municipality else ""
            code = named if named.startswith(KIROV + "-") else KIROV
        return PlaceResult(
            self.gaz.municipality(code),
            settlement,
            0.85,
            [curated.name],
            note=f"Kirov {curated.kind}",
            key=curated.id,
        )

    @staticmethod
    def _key_of(result: PlaceResult) -> str | None:
        place = result.settlement
        if place is None:
            return None
        if place.oktmo == KIROV_CITY_OKTMO:
            if place.type == "мкр" and place.municipality_code != KIROV:
                return "kirov-" + "-".join(place.words)
            return None
        return None if place.major else place.oktmo

    def place_key(
        self, tokens: Sequence[Token], municipality_code: str | None, settlement_oktmo: str | None
    ) -> str | None:
        """The place key of an analysed post (see :attr:`PlaceResult.key`) from its final labels.

        A known village's OKTMO is its key without reading the text; for posts in Kirov the text
        is resolved again (the curated places are not stored with the labels); towns have none.
        """
        if settlement_oktmo and settlement_oktmo != KIROV_CITY_OKTMO:
            place = self.gaz.by_oktmo.get(settlement_oktmo)
            return None if place is None or place.major else settlement_oktmo
        if not self._in_kirov(municipality_code):
            return None
        result = self._resolve_kirov(tokens, municipality_code)
        if result.municipality is None or result.municipality.code != municipality_code:
            return None  # the labels say otherwise (an operator, or a source fallback): trust them
        return result.key

    def _resolve_gazetteer(
        self, tokens: Sequence[Token], source_municipality: str | None, roles: _TextRoles
    ) -> PlaceResult:
        districts, consumed, poselenies = self._districts(tokens, roles)
        district_codes = [c for c, _ in districts]
        district_set = set(district_codes)
        district_parents = {self.gaz.city_district_parent(c) for c in district_codes}
        poselenie_munis = {m for m, _ in poselenies}
        poselenie_names = {p for _, p in poselenies}
        source_parent = self.gaz.city_district_parent(source_municipality) if source_municipality else None

        best: tuple[float, int, Place | None, list[Place], _Match] | None = None
        matches = list(self._settlement_matches(tokens, consumed, roles))
        for match in matches:
            cands = match.candidates
            context = (
                [
                    p
                    for p in cands
                    if p.municipality_code in district_set
                    or self.gaz.city_district_parent(p.municipality_code) in district_parents
                    or p.municipality_code in poselenie_munis
                ]
                if district_set or poselenie_munis
                else []
            )
            if poselenie_names:
                in_pos = [p for p in context if p.poselenie in poselenie_names]
                context = in_pos or context
            any_major = any(p.major for p in cands)
            if match.marker and not tokens[match.start - 1].dot_after and _is_everyday(match):
                continue  # «в городе был кинотеатр»: «город» before a verb, not «город Был»
            if match.marker == "мкр" and not any(self._in_okrug(p) for p in cands):
                continue  # «Вятские Поляны: в микрорайоне Центральный»: a town's part, no district's village
            if (tokens[match.start].quoted and not match.marker) or _patronymic_after(tokens, match.end):
                continue  # «ДК «Родина»», «фельдшеру деревни Надежде Петровне»: an institution, a person
            if not (match.marker or context or match.joined) and not self._plain_name_counts(
                match, cands, any_major
            ):
                continue
            pool = context or cands
            if len(pool) > 1 and source_municipality:
                same = [
                    p
                    for p in pool
                    if p.municipality_code == source_municipality
                    or self.gaz.city_district_parent(p.municipality_code) == source_parent
                ]
                pool = same or pool
            if len(pool) > 1 and match.marker:
                typed = [p for p in pool if _type_compatible(match.marker, p.type)]
                pool = typed or pool
            if len(pool) > 1:
                top = max(TYPE_RANK.get(p.type, 0) + (3 if p.major else 0) for p in pool)
                ranked = [p for p in pool if TYPE_RANK.get(p.type, 0) + (3 if p.major else 0) == top]
                if len(ranked) == 1 and top >= 4:
                    pool = ranked
            chosen = pool[0] if len(pool) == 1 else None
            score = (
                (3.0 if match.marker or match.joined else 0.0)
                + (3.0 if context else 0.0)
                + (2.0 if any_major else 0.0)
                + (1.0 if match.capital else 0.0)
                + (1.5 if chosen else 0.0)
                - (3.0 if _kirov_passed_through(tokens, match, matches) else 0.0)
            )
            if best is None or score > best[0]:
                best = (score, match.start, chosen, pool, match)

        if best is not None:
            found = self._best_result(tokens, best, districts, district_set, district_parents)
            if found is not None:
                return found
        return self._without_settlement(tokens, districts, poselenie_munis, poselenie_names, roles)

    def _without_settlement(
        self,
        tokens: Sequence[Token],
        districts: list[tuple[str, int]],
        poselenie_munis: set[str],
        poselenie_names: set[str],
        roles: _TextRoles,
    ) -> PlaceResult:
        """The place of a text where no settlement decides it: a named district, a poselenie, a
        town's residents, a Kirov street (weak), or nothing."""
        if districts:
            # a Kirov city district outranks «город Киров»; otherwise the first named
            return self._district_result(tokens, districts, 0.9)
        if poselenie_munis and len(poselenie_munis) == 1:
            return PlaceResult(
                self.gaz.municipality(next(iter(poselenie_munis))), None, 0.8, sorted(poselenie_names)
            )
        for i in roles.residents:  # «кировск…» and the residents' names start as in _DEMONYM_STARTS
            tok = tokens[i]
            if tok.low.startswith("кировск") and _institution_after(tokens, i, _KIROV_INSTITUTIONS):
                # «Кировский драмтеатр», «кировских школ», «Кировская областная больница»
                return PlaceResult(self.gaz.municipality(KIROV), None, 0.7, [tok.text], note="institution")
            demonym = _DEMONYMS.match(tok.low) if tok.low[:3] in _DEMONYM_STARTS else None
            if demonym:  # «Кировчане, подскажите …», «Котельничане сообщают …»
                code = _DEMONYM_CODES[demonym.group(1)]
                return PlaceResult(self.gaz.municipality(code), None, 0.7, [tok.text], note="residents")
        street = self._kirov_street(tokens)
        if street:
            return PlaceResult(
                self.gaz.municipality(KIROV), None, 0.4, [street], weak=True, note="Kirov street"
            )
        return PlaceResult()

    def _district_result(
        self, tokens: Sequence[Token], districts: list[tuple[str, int]], confidence: float
    ) -> PlaceResult:
        """The first named district, no settlement."""
        code, i = districts[0]
        return PlaceResult(self.gaz.municipality(code), None, confidence, [tokens[i].text])

    def _best_result(
        self,
        tokens: Sequence[Token],
        best: tuple[float, int, Place | None, list[Place], _Match],
        districts: list[tuple[str, int]],
        district_set: set[str],
        district_parents: set[str],
    ) -> PlaceResult | None:
        """The result of the best settlement match (None: no settlement decides the place)."""
        district_codes = [c for c, _ in districts]
        score, _, chosen, pool, match = best
        words = [match.surface]
        if chosen is not None:
            code = chosen.municipality_code
            # «Ленинский район» + «Киров»: the city district is more specific
            kirov_districts = [c for c in district_codes if c.startswith(KIROV + "-")]
            if code == KIROV and kirov_districts:
                code = kirov_districts[0]
            municipality = self.gaz.municipality(code)
            if district_codes and not (
                code in district_set or self.gaz.city_district_parent(code) in district_parents
            ):
                # the text names a district and a settlement elsewhere: the district wins
                municipality = self.gaz.municipality(district_codes[0])
                return PlaceResult(
                    municipality,
                    None,
                    0.8,
                    words + [tokens[i].text for _, i in districts[:1]],
                    note="district named; settlement elsewhere ignored",
                )
            around = self.gaz.okrug_district.get(code) if _near_not_in(tokens, match) else None
            if around:  # «полигон под Слободским»: the district around the town
                return PlaceResult(self.gaz.municipality(around), None, 0.7, words, note="near the town")
            conf = min(0.99, 0.55 + score * 0.05)
            return PlaceResult(municipality, chosen, round(conf, 2), words)
        munis = {p.municipality_code for p in pool}
        if districts:
            return self._district_result(tokens, districts, 0.85)
        if len(munis) == 1:
            return PlaceResult(
                self.gaz.municipality(munis.pop()), None, 0.6, words, note="ambiguous settlement"
            )
        return None

    def _kirov_street(self, tokens: Sequence[Token]) -> str | None:
        n = len(tokens)
        for i, tok in enumerate(tokens):
            streets = _STREETS_BY_FIRST.get(tok.low)
            if not streets:
                continue
            prev = tokens[i - 1].low if i > 0 else ""
            for street in streets:
                end = i + len(street)
                if end > n or any(tokens[i + k].low != street[k] for k in range(1, len(street))):
                    continue
                nxt_keys = _token_keys(tokens[end].low)[0] if end < n else frozenset()
                if prev in _STREET_BEFORE or nxt_keys & _STREET_AFTER or len(street) > 1:
                    return " ".join(t.text for t in tokens[i:end])
        return None


_PATRONYMIC = re.compile(
    r"[а-я]{2,}(?:[ое]вич(?:а|у|ем|е)?|[ое]вн(?:а|ы|е|у|ой|ою)|(?:ин)?ичн(?:а|ы|е|у|ой|ою))"
)
"""A patronymic's form («Петровне», «Ивановичем», «Ильиничной», «Кузьминичну»)."""


def _patronymic_after(tokens: Sequence[Token], end: int) -> bool:
    """Whether a capitalised patronymic follows the name («Надежде Петровне»): a person."""
    return end < len(tokens) and tokens[end].is_capitalized and bool(_PATRONYMIC.fullmatch(tokens[end].low))


def _form_of_name(match: _Match) -> bool:
    """Whether the written words are forms of the name's own words (they differ only in their
    last three letters), not another word sharing a lemma with it («Короче» is no «Короткие»)."""
    return _written_as_name(match.surface, match.words)


@lru_cache(maxsize=20_000)
def _written_as_name(surface: str, words: tuple[str, ...]) -> bool:
    """:func:`_form_of_name` of a match's written words and its name's words (cached)."""
    written = surface.lower().replace("ё", "е").split()
    if len(written) != len(words):
        return True
    for w, name in zip(written, words, strict=True):
        common = len(os.path.commonprefix([w, name]))
        if common < max(len(w), len(name)) - 3:
            return False
    return True


_STREET_LIST_SPAN = 6
"""How many names before it a street list's item looks for the list's «улицы»."""


def _in_street_list(tokens: Sequence[Token], start: int) -> bool:
    """A name in a list of streets after «улицы»/«улицах» («на улицах Пугачёва, Свободы, Труда»,
    «улиц Дерендяева, Свободы и Горького»): the names before it, each followed by a comma or
    joined by «и», go back to a street word in the same sentence."""
    if start < 2 or tokens[start].sent_start:
        return False
    j = start - 1
    for _ in range(_STREET_LIST_SPAN):
        if j < 1 or tokens[j + 1].sent_start:
            return False
        tok = tokens[j]
        if tok.low == "и" or (tok.is_capitalized and tok.punct_after and not tok.dot_after):
            j -= 1
            continue
        if tok.is_capitalized and j == start - 2 and tokens[start - 1].low == "и":
            j -= 1  # «Дерендяева и Свободы»
            continue
        return j < start - 1 and not tok.punct_after and bool(_token_keys(tok.low)[0] & _STREET_AFTER)
    return False


def _type_compatible(marker: str, place_type: str) -> bool:
    if marker == place_type:
        return True
    if marker == "п" and place_type in ("пгт", "п"):
        return True
    if marker == "мкр":
        return place_type in ("мкр", "п", "д", "с")
    return False


@lru_cache(maxsize=65_536)
def post_place_key(text: str, municipality_code: str | None, settlement_oktmo: str | None) -> str | None:
    """The place key of an analysed post from its text and final labels, for duplicate detection
    (see :mod:`incidents.cases.dedupe`, rule 5; stored as ``posts.place_key`` by processing).

    Only posts in the city of Kirov without a more specific settlement are read again (for the
    curated street, microdistrict or landmark); a village's key is its OKTMO.
    """
    tokens: list[Token] = []
    if (not settlement_oktmo or settlement_oktmo == KIROV_CITY_OKTMO) and (
        municipality_code or ""
    ).startswith(KIROV):
        tokens = tokenize(clean(truncate(text or "")[0], morph.is_known))
    return default_resolver().place_key(tokens, municipality_code, settlement_oktmo)


_default_lock = threading.Lock()


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The project's gazetteer, loaded once per process (shared by the analyser and routing)."""
    with _default_lock:
        return Gazetteer.load()


@lru_cache(maxsize=1)
def default_resolver() -> PlaceResolver:
    """A resolver over :func:`default_gazetteer` (for callers that have no analyser)."""
    return PlaceResolver(default_gazetteer())


# --------------------------------------------------------------------------- other regions, addresses

_KIROV_WORDS = frozenset({"киров", "кирово-чепецк", "вятка"})
_OTHER_CITIES = (
    "москва", "мск", "санкт-петербург", "петербург", "питер", "спб", "казань", "пермь",
    "нижний новгород", "екатеринбург", "екб", "ижевск", "йошкар-ола", "сыктывкар", "вологда",
    "кострома", "ярославль", "новосибирск", "самара", "уфа", "челябинск", "омск",
    "ростов-на-дону", "краснодар", "воронеж", "волгоград", "саратов", "тюмень", "тольятти",
    "барнаул", "ульяновск", "иркутск", "хабаровск", "владивосток", "махачкала", "томск",
    "оренбург", "кемерово", "новокузнецк", "рязань", "астрахань", "пенза", "липецк", "тула",
    "чебоксары", "калининград", "курск", "улан-удэ", "ставрополь", "сочи", "тверь", "иваново",
    "брянск", "белгород", "сургут", "архангельск", "чита", "смоленск", "калуга", "череповец",
    "владикавказ", "мурманск", "тамбов", "петрозаводск", "нижневартовск", "новороссийск",
    "набережные челны", "стерлитамак", "саранск", "глазов", "воткинск", "сарапул", "котлас",
    "ухта", "великий новгород", "псков", "подольск", "балашиха", "химки", "мытищи", "красноярск",
    "якутск", "магнитогорск", "нижний тагил", "дзержинск", "альметьевск", "нефтекамск", "минск",
    "татарстан", "удмуртия", "башкирия", "башкортостан", "марий эл", "чувашия", "мордовия", "коми",
    "хмао", "янао", "югра",
    "подмосковье", "крым", "севастополь", "симферополь", "ростов", "великий устюг",
    "сергиев посад", "люберцы", "красногорск", "одинцово", "зеленоград", "колпино",
    "гатчина", "выборг", "обнинск", "дмитров", "коломна", "серпухов", "электросталь", "ногинск",
    "домодедово", "щёлково", "реутов", "долгопрудный", "новомосковск", "старый оскол", "армавир",
    "батайск", "таганрог", "новочеркасск", "волгодонск", "пятигорск", "кисловодск", "ессентуки",
    "нальчик", "дербент", "элиста", "майкоп", "черкесск", "абакан", "кызыл", "бийск",
    "рубцовск", "норильск", "братск", "ангарск", "комсомольск-на-амуре", "благовещенск",
    "уссурийск", "петропавловск-камчатский", "магадан", "южно-сахалинск",
    "ханты-мансийск", "новый уренгой", "ноябрьск", "салехард", "нефтеюганск", "тобольск",
    "миасс", "копейск", "каменск-уральский", "первоуральск", "березники",
    "соликамск", "кунгур", "воркута", "печора", "северодвинск", "великие луки",
    "рыбинск", "кинешма", "муром", "арзамас", "саров", "выкса", "балахна", "елабуга",
    "зеленодольск", "нижнекамск", "чистополь", "бугульма", "сызрань", "новочебоксарск",
    "можга", "казахстан", "беларусь", "белоруссия", "новгород",
    # towns of the neighbouring regions near the border, and towns visitors from Kirov name
    "шахунья", "урень", "ветлуга", "тоншаево", "балезино", "коряжма", "вельск", "кудымкар",
    "кукмор", "мамадыш", "объячево", "мари-турек", "звенигово", "волжск", "козьмодемьянск",
    "сернур", "суздаль", "вязники", "котельники",
)  # fmt: skip
_REGION_ADJECTIVES = frozenset(
    {
        "московский", "ленинградский", "нижегородский", "свердловский", "пермский", "костромской",
        "вологодский", "ярославский", "новосибирский", "самарский", "челябинский", "тюменский",
        "архангельский", "краснодарский", "ростовский", "воронежский", "саратовский", "омский",
        "томский", "иркутский", "красноярский", "оренбургский", "ульяновский", "пензенский",
        "тульский", "тверской", "ивановский", "владимирский", "калужский", "рязанский", "курский",
        "белгородский", "брянский", "смоленский", "псковский", "новгородский", "мурманский",
        "калининградский", "алтайский", "ставропольский", "хабаровский", "приморский",
    }
)  # fmt: skip
_CITY_ADJECTIVES = frozenset(
    {
        "казанский", "ижевский", "питерский", "петербургский", "екатеринбургский", "сыктывкарский",
        "чебоксарский", "уфимский", "сочинский", "котласский", "йошкар-олинский",
    }
)  # fmt: skip
"""Adjectives of other regions' cities: another region only before a landmark of :data:`_LANDMARKS`
(«Казанский Кремль», «Ижевский пруд»), as Kirov has a «Казанская» street."""
_OTHER_ADJECTIVES = _REGION_ADJECTIVES | _CITY_ADJECTIVES
_LANDMARKS = frozenset(
    {
        "кремль", "пруд", "набережная", "зоопарк", "метро", "цирк", "вокзал", "аэропорт", "собор",
        "мост", "водохранилище", "парк", "аквапарк", "океанариум", "планетарий",
    }
)  # fmt: skip
"""Landmarks a city's or a region's adjective names another region by: «Казанский Кремль», «Пермский
«Парк Горького»», «Ижевский пруд» (not «Московская улица»: a Kirov street)."""
_REGION_NOUNS = frozenset({"область", "край", "обл"})


@lru_cache(maxsize=1)
def _other_city_index() -> dict[str, list[tuple[str, ...]]]:
    index: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for name in _OTHER_CITIES:
        words = tuple(name.split())
        index[words[0]].append(words)
        if len(words) > 1:  # «в Набережных Челнах»: the first word's lemma starts the name too
            for lemma in sorted(morph.lemmas(words[0]) - {words[0]}):
                index[lemma].append(words)
    return index


def _word_is(low: str, name: str, inflected: bool = False) -> bool:
    """Whether a word form is the name's word. ``inflected``: a word of a name of several words,
    whose words inflect together («Набережных Челнах», «Великих Луках»): any shared lemma counts."""
    if low == name:
        return True
    if inflected and morph.lemmas(low) & morph.lemmas(name):
        return True
    if name in morph.lemmas(low):  # «Санкт-Петербурге», «Йошкар-Олы»
        return True
    if "-" in name:  # «Ростове-на-Дону»: the first part's case ending varies
        first, _, rest = name.partition("-")
        return low.endswith("-" + rest) and low.startswith(first[:-1] if len(first) > 4 else first)
    return False


@lru_cache(maxsize=morph.WORD_CACHE_ENTRIES)
def _city_start(low: str) -> tuple[tuple[str, ...], ...] | None:
    """Other-region names a word form may start (``()`` for a region adjective), None for none."""
    index = _other_city_index()
    keys = morph.lemmas(low) | {low}
    starts = index.keys() & keys if "-" not in low else index.keys()
    found = (
        tuple(
            dict.fromkeys(
                words for first in starts for words in index[first] if _word_is(low, words[0], len(words) > 1)
            )
        )
        if starts
        else ()
    )
    if found:
        return found
    return () if keys & _OTHER_ADJECTIVES else None


_COMMON_DISTRICT_STEMS = ("ленинск", "октябрьск", "первомайск", "советск", "кировск", "заречн")
"""Adjectives of districts that many cities have (Kirov's city districts, the Советский district)."""


def _other_region_follows(tokens: Sequence[Token], i: int) -> bool:
    """Another region is named right at token ``i``: «(Киров) Калужской области»."""
    if i + 1 >= len(tokens) or tokens[i].low.startswith("кировск"):
        return False
    return bool(_city_start(tokens[i].low) == () and morph.lemmas(tokens[i + 1].low) & _REGION_NOUNS)


_RESIDENCE_LEMMAS = frozenset({"жить", "переехать", "переезжать", "перебраться", "уехать"})
_LIVING_LEMMAS = frozenset({"жить", "проживать"})
"""«живу в Кирове» beside another region's city: where the writer lives, not what the post is about
(moving to Kirov, «переехали в Киров», may well be about it)."""
_OURS = frozenset({"нас", "наш", "наша", "нашем", "нашего", "нашему", "нашим", "родной", "родном"})


def _kirov_mention_is_aside(tokens: Sequence[Token], i: int, other_at: int) -> bool:
    """Whether the mention of Kirov at token ``i`` is an aside in a post about another region
    named at token ``other_at``: the writer's origin («из Кирова», «переехали из Кирова в
    Пермь»), a comparison in a post that opens with the other city («Кострома: бабушке…», «Живу
    теперь в Ижевске… В Кирове такого не было»), or another region's Kirov («Калужская область,
    Киров»). «В Казани сделали, а у нас в Кирове?» is about Kirov: a mention with «у нас»/«наш»
    before it counts unless the other city heads the post («Казань, Азино: …»), and so does one
    before the other city unless it is an origin."""
    if any(t.low.startswith("калужск") for t in tokens):
        return True
    if i > 1 and tokens[i - 2].low == "не" and tokens[i - 1].low in ("про", "о", "об", "в", "во"):
        return True  # «пишу не про Киров, а про Ижевск»
    if other_at < i and (_compares(tokens, i) or _greeted(tokens, i)):
        # «Были в Йошкар-Оле… Нам бы в Кирове так», «…у нас в Кирове такого нет»; «Сегодня в
        # Котласе отличная погода… Привет Кирову», «Кирову спасибо»
        return True
    if other_at < i and _is_heading(tokens, other_at):
        return True  # «Казань, ул. Декабристов: … у нас в Кирове так же»
    if other_at == i + 1 and tokens[i].dash_after:
        return True  # a route: «трасса Киров — Пермь», «поезд Киров — Нижний Новгород»
    if i == 0 and tokens[0].low == "киров" and other_at > 1:
        # the subject of a comparison opening the post («Киров отдыхает: в Казани…», «Киров — это
        # ещё цветочки»), not a heading («Киров, перекрёсток у вокзала…»)
        return not tokens[0].punct_after or tokens[1].low == "это"
    if other_at < i and any(t.low in _YOURS for t in tokens[max(0, i - 3) : i]):
        return True  # «Пишу из Ижевска: … у вас в Кирове тоже такое?»: written from elsewhere
    if any(t.low in _OURS for t in tokens[max(0, i - 3) : i]):
        # «В Казани переложили асфальт, а у нас в Кирове Октябрьский проспект как после бомбёжки»
        # is about Kirov; «В Ижевске ямы такие… у нас в Кирове хоть латают» compares
        before = [t.low for t in tokens[max(0, i - 2) : i]]
        ours = before[-1] in _OURS or (before[-1] in ("в", "во") and len(before) == 2 and before[0] in _OURS)
        return ours and other_at < i and not _names_more_after(tokens, i)
    if i > 0 and tokens[i - 1].low in ("из", "с", "со", "на", "через", "от"):
        return True  # «из Кирова», colloquially «с Кирова»; «трасса на Киров», «поезд через Киров»
    if i > 0 and _is_destination(tokens, i) and not _said_before(tokens, i - 1, _RESIDENCE_LEMMAS):
        # a trip's end: «Вернулись в Киров, дома лучше», «из Москвы в Киров летали?», «еле
        # дотянули до Кирова» (not «переехали из Перми в Киров»: the post may be about Kirov; nor
        # «Вернулись в Киров, а в Александровском саду лавки сломаны»: a place of it follows)
        return not _names_more_after(tokens, i)
    if i > 1 and tokens[i - 1].low == "по" and _said_before(tokens, i - 1, _MISSING_LEMMAS):
        return True  # «скучаю по Кирову», «скучаю только по Вятке»
    if i > 1 and tokens[i - 1].low in ("в", "во") and tokens[i - 2].low == "домой":
        return True  # «везу домой в Киров»: the writer's home, the post is about the trip
    if (
        i > 1
        and tokens[i - 1].low in ("в", "во")
        and (_said_before(tokens, i - 1, _LIVING_LEMMAS) or (other_at < i and tokens[i - 2].low in _WRITER))
    ):
        # «Я его внучка, живу в Кирове», «хоть и живу теперь в Кирове», «Сама я в Кирове»: the
        # writer's home (not «Живу в Кирове на Ленина, …»: a street of it)
        return not _names_more_after(tokens, i)
    if other_at > i:
        return False
    opens = all(t.low in _PLACE_OPENERS for t in tokens[:other_at])
    # «живу теперь в Ижевске», «переехал в Пермь» (not «переехали из Перми в Киров»)
    moved = other_at > 0 and tokens[other_at - 1].low in ("в", "во")
    moved = moved and _said_before(tokens, other_at - 1, _RESIDENCE_LEMMAS)
    return opens or moved


_GREETINGS = frozenset({"привет", "спасибо", "поклон", "респект"})


def _greeted(tokens: Sequence[Token], i: int) -> bool:
    """A greeting or thanks to the city at token ``i`` (in the dative), right before or after it."""
    if tokens[i].low not in ("кирову", "вятке"):
        return False
    if i > 0 and tokens[i - 1].low in _GREETINGS and not tokens[i - 1].punct_after:
        return True  # «Привет Кирову»
    for j in range(i, min(i + 4, len(tokens) - 1)):  # «Кирову (в этом плане) спасибо»
        if tokens[j].punct_after:
            return False
        if tokens[j + 1].low in _GREETINGS:
            return True
    return False


_WRITER = frozenset({"я", "мы"})
"""«(Сама) я в Кирове», «платят почти как мы в Кирове» after another region's city: where the
writer is, not what the post is about."""
_MISSING_LEMMAS = frozenset({"скучать", "соскучиться"})
_YOURS = frozenset({"вас", "ваш", "вашем", "вашего", "вашей"})
_COMPARED_AFTER = frozenset({"такого", "хоть", "так"})
"""Words right after «в Кирове» comparing it with the other city: «у нас в Кирове такого нет»,
«в Кирове хоть дождь привычный», «нам бы в Кирове так»."""


def _compares(tokens: Sequence[Token], i: int) -> bool:
    """The mention of Kirov at token ``i`` compares it with another city, the writer's wish or
    contrast rather than a complaint about it: a comparing word right after it («в Кирове
    такого не припомню», «В Кирове хоть и ругались на транспорт») or a wish («нам бы (такой
    мост) в Кирове») in its clause before it, naming nothing of the city after it."""
    if i + 1 < len(tokens) and not tokens[i].punct_after and tokens[i + 1].low in _COMPARED_AFTER:
        return True
    for tok in reversed(tokens[max(0, i - 4) : i]):
        if tok.punct_after:
            return False
        if tok.low == "бы":
            return not _names_more_after(tokens, i)  # not «нам бы в Кирове на Ленина яму засыпать»
    return False


def _said_before(tokens: Sequence[Token], j: int, lemmas: frozenset[str]) -> bool:
    """One of the two words before token ``j`` has one of ``lemmas`` («живу (теперь) | в …»)."""
    return any(morph.lemmas(t.low) & lemmas for t in tokens[max(0, j - 2) : j])


def _names_more_after(tokens: Sequence[Token], i: int) -> bool:
    """A capitalised word (a street, a microdistrict, a landmark) follows token ``i`` within
    its sentence: «у нас в Кирове на Комсомольской весь двор в окурках»; another region's name
    does not count («…такого нет 😄 #питер»)."""
    for tok in tokens[i + 1 :]:
        if tok.sent_start:
            return False
        if tok.is_capitalized and _city_start(tok.low) is None:
            return True
    return False


def _kirov_passed_through(tokens: Sequence[Token], match: _Match, matches: Sequence[_Match]) -> bool:
    """The city of Kirov is an end of a route beside another named place, which the post is
    about: «трасса Киров — Советск в районе Пижанки», «автобус Слободской — Киров», «из Кстинино
    до Кирова билет подорожал» (not «Киров, Лепсе», a heading before a part of the city). So is
    a trip's destination beside a place outside the city, where the writer lives: «Кто едет в
    Киров из Орлова?», «ездим на работу в Киров» (not «в Кирове»; an origin is the writer's own
    place: «Кто едет из Кирова в Котельнич?»)."""
    if match.words != ("киров",) or len(matches) < 2:
        return False
    if match.start > 0 and _is_destination(tokens, match.start):
        if tokens[match.start - 1].low == "до" and any(m.end <= match.start - 1 for m in matches):
            return True  # «из Кстинино до Кирова»
        return any(m is not match and _outside_kirov(m) for m in matches)
    after = tokens[match.end - 1].dash_after and any(
        m.start == match.end and _outside_kirov(m) for m in matches
    )
    before = match.start > 0 and tokens[match.start - 1].dash_after
    return after or (before and any(m.end == match.start and _outside_kirov(m) for m in matches))


def _marked_as_street(tokens: Sequence[Token], start: int, end: int) -> bool:
    """A street word right before the name («ул. Луговая», «улица Луговая») or right after it
    («Луговая улица»), or a house number after a street's form («Ленина 148»); punctuation between
    them says otherwise."""
    if start > 0:
        prev = tokens[start - 1]
        joined = not prev.punct_after or (prev.dot_after and prev.low in ABBREVIATIONS)
        if joined and (prev.low in _STREET_BEFORE or (_token_keys(prev.low)[0] & _STREET_BEFORE)):
            return True
    if end < len(tokens) and not tokens[end - 1].punct_after:
        if _token_keys(tokens[end].low)[0] & _STREET_AFTER and _ADJECTIVE_FORM.fullmatch(tokens[end - 1].low):
            return True  # «Луговая улица»; not «пижанка улица труда» (a town, then its street)
        if (
            end - start == 1
            and _HOUSE_NUMBER.match(tokens[end].low)
            and _STREET_FORM.fullmatch(tokens[start].low)
            and not (end + 1 < len(tokens) and _token_keys(tokens[end + 1].low)[0] & _QUANTITY_LEMMAS)
        ):
            return True  # «Ленина 148», «Кирова 3»: a street's form with a house number
    return False


def _is_destination(tokens: Sequence[Token], i: int) -> bool:
    """Token ``i`` (a form of «Киров») is where a trip goes: «в Киров», «на Киров» (the
    accusative, not the locative «в Кирове»), «до Кирова»."""
    prev = tokens[i - 1].low
    return prev == "до" or (prev in ("в", "во", "на") and tokens[i].low == "киров")


def _outside_kirov(match: _Match) -> bool:
    """No candidate of the match lies in the city of Kirov's okrug («Киров — Порошино» is a
    city route)."""
    return not any(p.municipality_code.startswith(KIROV) for p in match.candidates)


def _is_heading(tokens: Sequence[Token], at: int) -> bool:
    """The place named at token ``at`` heads the post: it opens the text (after «г.» or «город»
    at most) and punctuation follows its name («Казань, Азино.», «Кострома: …»)."""
    if not all(t.low in ("г", "город") for t in tokens[:at]):
        return False
    end = at
    while end + 1 < len(tokens) and not tokens[end].punct_after and tokens[end + 1].is_capitalized:
        end += 1  # «Набережные Челны, …»
    return tokens[end].punct_after


_PLACE_OPENERS = frozenset({"г", "город", "в", "во", "я", "мы", "из"})
"""Words that may come before a city's name at the very start of a post («г. Пермь, …»)."""


def _other_region_at(tokens: Sequence[Token], at: Iterable[int]) -> tuple[int, str] | None:
    """(token index, name) of the first city or region outside the Kirov region the text names,
    or None.

    The list holds no everyday words («Орёл», «Курган», «Владимир» are left out), so a name counts
    in any case and letter case; after a settlement marker («д. Москва») it is a Kirov village. An
    adjective counts only before «область»/«край» («Пермский край») or a landmark («Казанский
    Кремль», :data:`_LANDMARKS`), as a Kirov street may be called «Московская» or «Казанская».
    """
    n = len(tokens)
    for i in at:  # the words that may name one (:func:`_may_name_other_region`)
        tok = tokens[i]
        if (tok.low in _NIZHNY and _is_nizhny(tokens, i)) or (
            tok.low[:3] in _OTHER_DEMONYM_STARTS and _OTHER_DEMONYMS.match(tok.low)
        ):
            return i, tok.text
        if i == 0 and tok.low in _HEADING_CITIES and tok.punct_after:
            if any(t.low in _ADDRESS_MARKERS for t in tokens[1:3]):
                return i, tok.text  # «Владимир, улица Ленина 33 — …», «Орёл, Октябрьский проспект»
        found = _city_start(tok.low)
        if found is None:
            continue
        for words in found:
            end = i + len(words)
            if end <= n and all(_word_is(tokens[i + k].low, words[k], True) for k in range(1, len(words))):
                if i > 0 and _is_settlement_marker(tokens[i - 1]):
                    break  # «д. Москва», «деревня Казань»: Kirov villages bear such names
                return i, " ".join(t.text for t in tokens[i:end])
        if not found and i + 1 < n:
            after = morph.lemmas(tokens[i + 1].low)
            if after & _REGION_NOUNS or (after & _LANDMARKS and not tok.punct_after):
                return i, f"{tok.text} {tokens[i + 1].text}"
    return None


def _may_name_other_region(low: str) -> bool:
    """Whether a word form may be what :func:`_other_region_at` looks for, as far as the word
    alone says: «Нижний», a resident's name, a city heading a post, or a form starting a city's
    or a region's name (most words are none)."""
    lemmas = morph.lemmas(low)
    index = _other_city_index()
    may_start = (
        "-" in low
        or low in index
        or low in _OTHER_ADJECTIVES
        or not index.keys().isdisjoint(lemmas)
        or not _OTHER_ADJECTIVES.isdisjoint(lemmas)
    )  # what _city_start needs to find something: asked only then
    may_name = (
        low in _NIZHNY
        or low in _HEADING_CITIES
        or bool(_OTHER_DEMONYMS.match(low))
        or (may_start and _city_start(low) is not None)
    )
    return may_name


_NIZHNY = frozenset({"нижний", "нижнего", "нижнему", "нижнем", "нижним"})
_HEADING_CITIES = frozenset({"владимир", "орёл", "орел", "курган"})
"""Cities named like everyday words or first names: a city only as a post's heading before a
street («Владимир, улица Ленина 33»)."""
_OTHER_DEMONYM_STEMS = (
    "питерц", "петербуржц", "казанц", "пермяк", "ижевчан", "вологжан", "нижегородц", "екатеринбуржц",
    "сыктывкарц", "костромич", "ярославц", "чебоксарц", "глазовчан", "уфимц", "самарц", "котлашан",
)  # fmt: skip
_OTHER_DEMONYMS = re.compile("^(" + "|".join(_OTHER_DEMONYM_STEMS) + ")(и|ы|е|ам|ами|ах)?$")
"""Plural forms of other regions' residents («Пермяки, подскажите…», «поздравляю вологжан»):
not «москвичи» (a car), nor forms that are surnames («Пермяков», «Казанцев»)."""
_OTHER_DEMONYM_STARTS = frozenset(stem[:3] for stem in _OTHER_DEMONYM_STEMS)
"""First three letters of those forms: most words are no resident's name, checked by a set."""


def _is_nizhny(tokens: Sequence[Token], i: int) -> bool:
    """«Нижний» alone, as people call Nizhny Novgorod: capitalised inside a sentence and not
    followed by a capitalised name («в Нижнем на Покровской», not «в Нижнем Ивкино»), or a
    heading («Нижний, Сормовский район»); «Нижний этаж затопило» is no city."""
    tok = tokens[i]
    if not tok.is_capitalized or tok.text.isupper():
        return False
    if tok.punct_after:
        return True
    return not tok.sent_start and (i + 1 >= len(tokens) or not tokens[i + 1].is_capitalized)


def _is_settlement_marker(tok: Token) -> bool:
    """A village marker («д.», «деревня», «с.», «пос.»); «г.»/«город» mark cities, which it
    is about (the Kirov region has no city named like another region's one)."""
    if tok.low in _LETTER_MARKERS:
        return tok.low != "г" and (tok.dot_after or tok.low in _LETTERS_WITHOUT_DOT)
    kinds = {_MARKER_LEMMAS[k] for k in _MARKER_LEMMAS.keys() & _token_keys(tok.low)[0]}
    return bool(kinds - {"г", "мкр"})


_ADDRESS_MARKERS = frozenset(
    {
        "ул", "улица", "пр", "пр-т", "просп", "проспект", "пер", "переулок", "пл", "площадь",
        "бульвар", "б-р", "наб", "набережная", "тракт", "шоссе", "проезд", "тупик",
    }
)  # fmt: skip
_HOUSE_WORDS = frozenset({"д", "дом", "домом", "дома", "доме", "корп", "к", "кв"})
_HOUSE_NUMBER = re.compile(r"^\d{1,4}[а-я]?$")
MAX_ADDRESS_CHARS = 200


def street_address(
    tokens: Sequence[Token], curated: str | None = None, markers: Iterable[int] | None = None
) -> str | None:
    """Street, house number or landmark named by the text («ул. Ленина, д. 15»), or None.

    A street marker («ул.», «проспект», «пер.»…) followed by its name (capitalised words or a
    number: «ул. 8 Марта») and an optional house number; otherwise a curated Kirov street or
    landmark (``curated``) with the number after it. At most :data:`MAX_ADDRESS_CHARS`.
    ``markers``: the indexes of the street markers, in order, when the caller knows them.
    """
    n = len(tokens)
    if markers is None:
        markers = [i for i, tok in enumerate(tokens) if tok.low in _ADDRESS_MARKERS]
    for i in markers:
        tok = tokens[i]
        if i + 1 >= n:
            continue
        j = i + 1
        name: list[str] = []
        while j < n and len(name) < 4:
            t = tokens[j]
            if t.is_capitalized or (
                t.low.isdigit() and not name and j + 1 < n and tokens[j + 1].is_capitalized
            ):
                name.append(t.text)
                j += 1
                # punctuation ends the name, a dot only when it ends the sentence («ул. Н. Ершова»)
                if t.punct_after and (not t.dot_after or (j < n and tokens[j].sent_start)):
                    break
                continue
            break
        if not name:
            continue
        marker = tok.text + ("." if tok.dot_after else "")
        parts = [f"{marker} {' '.join(name)}"]
        house = _house_number(tokens, j)
        if house:
            parts.append(house)
        return ", ".join(parts)[:MAX_ADDRESS_CHARS]
    if curated:
        words = curated.split()
        for i in range(n - len(words) + 1):
            if _fold(tokens[i].low)[:4] == _fold(words[0].lower())[:4]:
                house = _house_number(tokens, i + len(words))
                return (curated + (f", {house}" if house else ""))[:MAX_ADDRESS_CHARS]
        return curated[:MAX_ADDRESS_CHARS]
    return None


def _house_number(tokens: Sequence[Token], j: int) -> str | None:
    n = len(tokens)
    if j < n and tokens[j].low in _HOUSE_WORDS and j + 1 < n and _HOUSE_NUMBER.match(tokens[j + 1].low):
        return f"д. {tokens[j + 1].text}"
    if j < n and _HOUSE_NUMBER.match(tokens[j].low):
        return f"д. {tokens[j].text}"
    return None
