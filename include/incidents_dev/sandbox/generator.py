"""A deterministic, realistic social-media stream of the Kirov region, with ground truth.

The stream is generated per (source, hour) with a random generator seeded from
``(seed, network, source id, hour)``, so the content of an hour never depends on the
requested window: a 30-day window is exactly the concatenation of its days. On top of the
per-source chatter, "world incidents" are drawn per hour for the whole region; each is posted
by one source and echoed (re-described) by one or two others, often in other networks, within
about three days; all those posts share the incident's ``incident_key``.

Every item carries its ground truth (``is_incident``, category, rubricator topic, hazard,
municipality, settlement). Texts come from ``texts/templates.yaml`` with places from the
OKTMO gazetteer (``texts/settlements.csv``) and the city of Kirov (``texts/kirov_places.yaml``),
inflected with pymorphy3, and noise (typos, caps, stretched letters, emoji, Latin look-alikes).

Windowing: an item belongs to the window of its ``window_time``: its own time for posts and
for Twitter/X replies (which the search API returns by their own time), its parent post's
time for comments elsewhere (clients fetch the comments of the posts of a window).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import logging
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from incidents import (
    HAZARD_TYPES,
    NETWORKS,
)
from incidents.config import REFERENCE_DIR
from incidents.sources import Source, load_sources

log = logging.getLogger(__name__)

TEXTS_DIR = Path(__file__).resolve().parent / "texts"
HOUR = 3600
DEFAULT_RATE = 24.0
"""Default posts per source per day (before the diurnal profile)."""
ECHO_HORIZON_HOURS = 72
"""World incidents are echoed within this many hours of their first post."""
COMMENT_HORIZON_HOURS = 48
"""Comments (and Twitter/X replies) come at most this long after their post."""
MAX_POSTS_PER_HOUR = 200
WORLD_START = datetime(2025, 1, 1, tzinfo=UTC)
"""The generated world begins here: no source published anything before (as if every monitored
community had been created then). It is a fixed origin, not a window behind "now": a wall, a
Page feed or a media list serves everything since, whatever the clock says."""
WORLD_START_HOUR = int(WORLD_START.timestamp()) // HOUR
TWITTER_EPOCH_MS = 1288834974657
KIROV_LAT, KIROV_LON = 58.6035, 49.6668


# Local-time (UTC+3) activity profile; multiplies the mean hourly rate.
_DIURNAL = (
    0.25, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 1.0, 1.3, 1.4, 1.4, 1.4,
    1.4, 1.4, 1.3, 1.3, 1.3, 1.4, 1.5, 1.6, 1.6, 1.4, 1.0, 0.55,
)  # fmt: skip
_DIURNAL_NORM = 24.0 / sum(_DIURNAL)

# Genre mixes of the posts a source publishes itself (world incidents come on top).
_GENRES_PUBLIC = (
    ("chatter", 40.0),
    ("ad", 18.0),
    ("question", 11.0),
    ("thanks", 6.0),
    ("news", 6.0),
    ("planned", 5.0),
    ("greeting", 4.0),
    ("complaint", 3.6),
    ("hazard", 0.25),
)
_GENRES_OFFICIAL = (
    ("news", 45.0),
    ("planned", 25.0),
    ("greeting", 12.0),
    ("thanks", 5.0),
    ("question", 3.0),
    ("chatter", 6.0),
    ("complaint", 1.5),
    ("hazard", 0.1),
)
_COMMENT_GENRES = (("reply", 95.0), ("complaint", 2.2), ("hazard", 0.15))
_FLAT_THREADS = {"facebook", "instagram"}
"""Networks whose comment threads have one level: a reply to a reply answers the thread's comment."""
_DELETABLE = {"vk", "ok"}
"""Networks whose APIs list deleted comments (as stubs without text)."""


@dataclass(slots=True)
class SandboxItem:
    """One generated post or comment: raw network data plus its ground truth."""

    network: str
    source_id: str
    native_id: str
    """The network's own id: VK post/comment id, OK topic/comment id, tweet id, Facebook
    ``<page>_<post>`` / ``<post>_<comment>`` id, Instagram media/comment id."""
    kind: str
    """``post`` or ``comment``."""
    published_at: datetime
    window_time: datetime
    author_id: str
    author_name: str
    text: str
    parent_native_id: str | None = None
    """For comments: the native id of the post they belong to."""
    reply_to_native_id: str | None = None
    """For replies inside a thread: the native id of the comment replied to. Facebook and
    Instagram threads have one level (a reply answers a top-level comment), VK, OK and Twitter/X
    replies may answer a reply."""
    owner_id: str = ""
    """The wall a VK item is on: the community (the source id) or, for search sources, the author."""
    geo: dict[str, float] | None = None
    deleted: bool = False
    genre: str = "chatter"
    seq: int = 0
    """Position of a post in its (source, hour), or of a comment under its post."""
    is_incident: bool = False
    category: str | None = None
    topic: str | None = None
    hazard: bool = False
    hazard_type: str | None = None
    municipality: str | None = None
    settlement_oktmo: str | None = None
    incident_key: str | None = None
    comments: list[SandboxItem] = field(default_factory=list, repr=False)

    def truth(self) -> dict[str, Any]:
        """The ground-truth record of this item (no nested comments): the fields plus
        ``external_id``, ``parent_external_id`` (the post, or for a thread reply the comment it
        answers) and ``post_external_id`` (the root post; a post's own id)."""
        data = asdict(self)
        data.pop("comments")
        data["published_at"] = _iso(self.published_at)
        data["window_time"] = _iso(self.window_time)
        data["external_id"] = external_id(self)
        data["parent_external_id"] = parent_external_id(self)
        data["post_external_id"] = post_external_id(self)
        return data


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- external ids


def external_id(item: SandboxItem) -> str:
    """The ``external_id`` the network clients give this item (see ``incidents.collect``)."""
    if item.network == "vk":
        owner = item.owner_id or item.source_id
        if item.kind == "post":
            return f"{owner}_{item.native_id}"
        return f"{owner}_{item.parent_native_id}_{item.native_id}"
    if item.network == "ok":
        if item.kind == "post":
            return f"{item.source_id}_{item.native_id}"
        return f"{item.source_id}_{item.parent_native_id}_{item.native_id}"
    return item.native_id


def post_external_id(item: SandboxItem) -> str:
    """The external id of the post an item belongs to (a post's own id)."""
    if item.kind == "post" or item.parent_native_id is None:
        return external_id(item)
    if item.network == "vk":
        return f"{item.owner_id or item.source_id}_{item.parent_native_id}"
    if item.network == "ok":
        return f"{item.source_id}_{item.parent_native_id}"
    return item.parent_native_id


def parent_external_id(item: SandboxItem) -> str | None:
    """The ``parent_external_id`` the clients give an item: None for posts, the post's external id
    for a top-level comment, the external id of the comment answered for a reply in a thread
    (VK ``reply_to_comment``, OK ``reply_to_comment_id``, Graph ``parent``, Instagram nested
    replies, Twitter/X the ``replied_to`` tweet)."""
    if item.kind == "post" or item.parent_native_id is None:
        return None
    post = post_external_id(item)
    reply_to = item.reply_to_native_id
    if reply_to is None:
        return post
    if item.network in ("vk", "ok"):
        return f"{post}_{reply_to}"
    return reply_to


# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True)
class Place:
    """A place an author can name, with its truth and its renderings."""

    municipality: str
    settlement_oktmo: str | None
    forms: tuple[str, ...]
    """Locative phrases with preposition ("в деревне Сибирь", "в Кумёнах", "на Филейке")."""
    gen_forms: tuple[str, ...]
    """Genitive phrases ("деревни Сибирь", "дома на Филейке")."""
    geo: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Texts:
    data: dict[str, Any]
    complaints: dict[str, list[tuple[str, str]]]
    """category -> [(topic, problem)]"""
    hazards: dict[str, tuple[str, str, list[str]]]
    """hazard_type -> (category, topic, problems)"""
    places_by_municipality: dict[str, list[Place]]
    centres: dict[str, Place]
    municipality_codes: tuple[str, ...]


_TYPE_WORDS = {
    "д": (("в деревне", "деревни"), ("в д.", "д.")),
    "с": (("в селе", "села"), ("в с.", "с.")),
    "п": (("в посёлке", "посёлка"), ("в пос.", "пос.")),
    "пгт": (("в посёлке", "посёлка"), ("в пгт", "пгт")),
    "г": (("в городе", "города"), ("в г.", "г.")),
}


@lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


def _inflect_word(word: str, case: str) -> str | None:
    """Inflect a one-word place name, or None when pymorphy3 is unsure."""
    if word.endswith(("ово", "ево", "ино", "ыно", "ого", "аго", "их", "ых")):
        return word
    parses = [p for p in _morph().parse(word) if "nomn" in p.tag]
    if not parses:
        return None
    geo = [p for p in parses if "Geox" in p.tag]
    parse = (geo or parses)[0]
    if parse.tag.POS not in ("NOUN", "ADJF"):
        return None
    if word.endswith(("а", "я")) and "plur" in parse.tag:
        return None
    inflected = parse.inflect({case})
    if inflected is None:
        return None
    out = inflected.word
    parts_in, parts_out = word.split("-"), out.split("-")
    if len(parts_in) == len(parts_out):
        out = "-".join(
            p[:1].upper() + p[1:] if o[:1].isupper() else p for p, o in zip(parts_out, parts_in, strict=True)
        )
    return out.replace("ё", "е") if "ё" not in word and "ё" in out and word != out else out


def _adjective_gent(adjective: str) -> str:
    """``Кирово-Чепецкий`` -> ``Кирово-Чепецкого``; ``Даровской`` -> ``Даровского``."""
    for ending in ("ский", "ской", "цкий", "кий", "ой", "ий", "ый"):
        if adjective.endswith(ending):
            stem = adjective[: -len(ending)] + ending[:-2]
            return stem + "ого"
    return adjective


def _settlement_place(row: dict[str, str], district_gen: str | None) -> Place:
    name, kind = row["name"], row["type_abbr"]
    (full_loc, full_gen), (short_loc, short_gen) = _TYPE_WORDS[kind]
    forms = [f"{full_loc} {name}", f"{short_loc} {name}", f"{short_gen} {name}"]
    gens = [f"{full_gen} {name}", f"{short_gen} {name}"]
    if kind == "г":
        loc = _inflect_word(name, "loct") if " " not in name else None
        gen = _inflect_word(name, "gent") if " " not in name else None
        if loc:
            forms = [f"{full_loc} {loc}", f"в {loc}", f"в {loc}", f"{short_loc} {name}"]
        if gen:
            gens = [f"{full_gen} {gen}", gen]
    elif " " not in name:
        loc = _inflect_word(name, "loct")
        if loc:
            forms.append(f"в {loc}")
            if kind == "пгт":
                forms.append(f"в {loc}")
    if district_gen and kind in ("д", "с", "п"):
        forms.append(f"{full_loc} {name} {district_gen} района")
        forms.append(f"{short_loc} {name} ({district_gen} р-н)")
        gens.append(f"{full_gen} {name} {district_gen} района")
    return Place(
        municipality=row["oktmo"][:5],
        settlement_oktmo=row["oktmo"],
        forms=tuple(dict.fromkeys(forms)),
        gen_forms=tuple(dict.fromkeys(gens)),
    )


@lru_cache(maxsize=1)
def _texts() -> _Texts:
    data = yaml.safe_load((TEXTS_DIR / "templates.yaml").read_text(encoding="utf-8"))
    complaints = {
        category: [(topic, problem) for topic, problems in topics.items() for problem in problems]
        for category, topics in data["categories"].items()
    }
    hazard_topics = _hazard_topics()
    hazards = {}
    for hazard_type, problems in data["hazards"].items():
        if hazard_type not in HAZARD_TYPES:
            raise ValueError(f"templates.yaml: unknown hazard type {hazard_type!r}")
        category, topic = hazard_topics[hazard_type]
        hazards[hazard_type] = (category, topic, list(problems))
    units = list(csv.DictReader((TEXTS_DIR / "municipal_units.csv").open(encoding="utf-8")))
    adjectives = {u["oktmo_prefix"]: u["adjective"] for u in units if u["kind"] == "municipal_district"}
    centres_by_code = {
        u["oktmo_prefix"]: u["admin_centre"] for u in units if u["kind"] != "city_district_of_kirov"
    }
    places: dict[str, list[Place]] = {}
    centres: dict[str, Place] = {}
    for row in csv.DictReader((TEXTS_DIR / "settlements.csv").open(encoding="utf-8")):
        code = row["oktmo"][:5]
        adjective = adjectives.get(code)
        place = _settlement_place(row, _adjective_gent(adjective) if adjective else None)
        places.setdefault(code, []).append(place)
        if centres_by_code.get(code) == f"{row['type_abbr']} {row['name']}":
            centres.setdefault(code, place)
    kirov = yaml.safe_load((TEXTS_DIR / "kirov_places.yaml").read_text(encoding="utf-8"))
    oktmo = kirov["settlement_oktmo"]
    for district, entries in kirov["districts"].items():
        for index, entry in enumerate(entries):
            forms = (entry["loc"], *entry.get("alt", []))
            lat = KIROV_LAT + ((index * 37) % 11 - 5) * 0.006
            lon = KIROV_LON + ((index * 53) % 13 - 6) * 0.008
            if district.endswith("novovyatsky"):
                lat, lon = lat - 0.09, lon + 0.04
            places.setdefault(district, []).append(
                Place(
                    municipality=district,
                    settlement_oktmo=oktmo,
                    forms=tuple(
                        f"{f} в Кирове" if entry.get("street") and i == 0 else f for i, f in enumerate(forms)
                    )
                    + forms[:1],
                    gen_forms=tuple(f"дома {f}" for f in forms[:2]),
                    geo=(round(lat, 5), round(lon, 5)),
                )
            )
    codes = tuple(sorted(places))
    return _Texts(data, complaints, hazards, places, centres, codes)


def _hazard_topics() -> dict[str, tuple[str, str]]:
    """hazard_type -> (category, topic) from the rubricator (``reference/rubricator.yaml``)."""
    path = REFERENCE_DIR / "rubricator.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: dict[str, tuple[str, str]] = {}
    for category in data["categories"]:
        for topic in category.get("topics", []):
            if topic.get("hazard") and topic.get("hazard_type"):
                out.setdefault(topic["hazard_type"], (category["slug"], topic["slug"]))
    missing = set(HAZARD_TYPES) - set(out)
    if missing:
        raise ValueError(f"{path}: no hazard topic for {sorted(missing)}")
    return out


# --------------------------------------------------------------------------- randomness


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, float]]) -> str:
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, weight in pairs:
        x -= weight
        if x <= 0:
            return value
    return pairs[-1][0]


# --------------------------------------------------------------------------- noise

_LATIN = str.maketrans(
    {"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "К": "K", "М": "M"}
)
_SLANG = (
    ("что", "чё"),
    ("сейчас", "щас"),
    ("пожалуйста", "пж"),
    ("вообще", "ваще"),
    ("спасибо", "спс"),
    ("почему", "почему-то"),
    ("человек", "чел"),
    ("администрация", "адм-ция"),
)
_EMOJI = ("😡", "🤬", "😤", "😢", "🙏", "👎", "❗", "‼️", "😱", "🤦", "😠", "💩", "🙄")
_STRETCH_WORDS = ("ужас", "надоело", "сколько", "помогите", "опасно", "когда", "долго", "срочно", "позор")


def _noise(text: str, rng: random.Random, level: float = 1.0) -> str:
    """Typos, slang, caps, stretched letters, emoji and Latin look-alikes, with probabilities."""
    if rng.random() < 0.35 * level:
        text = text.replace("ё", "е")
    if rng.random() < 0.12 * level:
        text = _slang(text)
    text = " ".join(_word_noise(text.split(" "), rng, level))
    if rng.random() < 0.12 * level:
        text = _stretch(text, rng)
    roll = rng.random()
    if roll < 0.05 * level:
        text = text.upper()
    elif roll < 0.2 * level:
        text = text.lower()
    if rng.random() < 0.28 * level:
        text = text.rstrip() + " " + "".join(rng.choice(_EMOJI) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.1 * level:
        text = text.rstrip(".") + rng.choice(("!!!", "!!!!!", "??", "...", "!?"))
    return text


def _slang(text: str) -> str:
    """The first slang form whose word occurs in the text, once."""
    for a, b in _SLANG:
        if a in text:
            return text.replace(a, b, 1)
    return text


def _word_noise(words: list[str], rng: random.Random, level: float) -> list[str]:
    """A typo (swapped or dropped letter) and Latin look-alikes in one word each, with probabilities."""
    if rng.random() < 0.22 * level and len(words) > 3:
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 4 and w.isalpha() and w.islower():
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.6 else w[:j] + w[j + 1 :]
    if rng.random() < 0.08 * level and len(words) > 3:
        i = rng.randrange(len(words))
        if words[i].isalpha():
            words[i] = words[i].translate(_LATIN)
    return words


def _stretch(text: str, rng: random.Random) -> str:
    """The first vowel of the first emotional word stretched (``ужаааас``)."""
    for w in _STRETCH_WORDS:
        pos = text.lower().find(w)
        if pos >= 0:
            vowel = next((k for k in range(pos, pos + len(w)) if text[k].lower() in "аеиоуыэюя"), None)
            if vowel is not None:
                text = text[: vowel + 1] + text[vowel] * rng.randint(2, 5) + text[vowel + 1 :]
            break
    return text


# --------------------------------------------------------------------------- content


@dataclass(frozen=True)
class _Content:
    text: str
    genre: str
    is_incident: bool = False
    category: str | None = None
    topic: str | None = None
    hazard: bool = False
    hazard_type: str | None = None
    municipality: str | None = None
    settlement_oktmo: str | None = None
    geo: tuple[float, float] | None = None


@dataclass(frozen=True)
class _Facts:
    """What an incident is about; re-described by every echo."""

    category: str
    topic: str
    problem_index: int
    hazard_type: str | None
    place: Place | None
    municipality: str


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _fill(template: str, rng: random.Random, place: Place | None, problem: str = "") -> str:
    texts = _texts().data
    if place is None:
        loc, gen = (
            rng.choice(("у нас", "у нас в деревне", "у нас во дворе", "у нас на улице", "тут")),
            "нашего района",
        )
    else:
        loc, gen = rng.choice(place.forms), rng.choice(place.gen_forms)
    since = rng.choice(texts["since"])
    values = {
        "place": loc,
        "Place": _cap(loc),
        "place_gen": gen,
        "problem": problem,
        "problem_cap": _cap(problem),
        "since": since,
        "since_cap": _cap(since),
        "addr": rng.choice(texts["addr"]),
    }
    return template.format(**values)


def _pick_place(rng: random.Random, municipality: str) -> Place | None:
    """A place in (or, for regional pages, anywhere around) a source's municipality."""
    t = _texts()
    code = municipality
    if code == "33701" and rng.random() < 0.5:
        code = rng.choice(t.municipality_codes)
    if code == "33701":
        code = rng.choice(("33701-leninsky", "33701-oktyabrsky", "33701-pervomaysky", "33701-novovyatsky"))
    candidates = t.places_by_municipality.get(code)
    if not candidates:
        return None
    if code in t.centres and rng.random() < 0.3:
        return t.centres[code]
    return rng.choice(candidates)


def _draw_facts(rng: random.Random, municipality: str, hazard: bool) -> _Facts:
    t = _texts()
    if hazard:
        # the hazard types that have texts, in HAZARD_TYPES order (a type added to the product
        # without sandbox texts yet is not generated, and does not change the others' stream)
        hazard_type = rng.choice([h for h in HAZARD_TYPES if h in t.hazards])
        category, topic, problems = t.hazards[hazard_type]
        problem_index = rng.randrange(len(problems))
    else:
        hazard_type = None
        category = rng.choice(sorted(t.complaints))
        topic, _ = rng.choice(t.complaints[category])
        problem_index = rng.randrange(1_000_000)
    place = _pick_place(rng, municipality) if rng.random() < 0.88 else None
    return _Facts(
        category, topic, problem_index, hazard_type, place, place.municipality if place else municipality
    )


def _render_incident(facts: _Facts, rng: random.Random, comment: bool = False) -> _Content:
    t = _texts()
    data = t.data
    if facts.hazard_type:
        problems = t.hazards[facts.hazard_type][2]
        problem = problems[(facts.problem_index + (rng.random() < 0.4)) % len(problems)]
        frames = data["comment_complaint_frames"] if comment else data["hazard_frames"]
    else:
        problems = [p for topic, p in t.complaints[facts.category] if topic == facts.topic]
        problem = problems[(facts.problem_index + (rng.random() < 0.3)) % len(problems)]
        frames = data["comment_complaint_frames"] if comment else data["complaint_frames"]
    text = _noise(_fill(rng.choice(frames), rng, facts.place, problem), rng)
    place = facts.place
    return _Content(
        text=text,
        genre="hazard" if facts.hazard_type else "complaint",
        is_incident=True,
        category=facts.category,
        topic=facts.topic,
        hazard=facts.hazard_type is not None,
        hazard_type=facts.hazard_type,
        municipality=facts.municipality,
        settlement_oktmo=place.settlement_oktmo if place else None,
        geo=place.geo if place and rng.random() < 0.3 else None,
    )


_GENRE_KEYS = {
    "chatter": "chatter",
    "ad": "ads",
    "question": "questions",
    "thanks": "thanks",
    "news": "news",
    "planned": "planned_works",
    "greeting": "greetings",
    "reply": "comment_replies",
}


def _render_plain(genre: str, rng: random.Random, municipality: str) -> _Content:
    template = rng.choice(_texts().data[_GENRE_KEYS[genre]])
    place = None
    if "{place" in template or "{Place" in template:
        place = _pick_place(rng, municipality)
    text = _fill(template, rng, place)
    level = 0.3 if genre in ("news", "planned", "greeting") else 0.8
    text = _noise(text, rng, level)
    return _Content(
        text=text,
        genre=genre,
        municipality=place.municipality if place else None,
        settlement_oktmo=place.settlement_oktmo if place else None,
    )


# --------------------------------------------------------------------------- config & ids


@dataclass(frozen=True, eq=False)
class GeneratorConfig:
    """Everything the stream depends on; two equal configs generate identical streams.

    Compared and hashed by identity (it keys the per-hour caches); :meth:`build` interns
    instances so equal parameters give the same object.
    """

    seed: int = 0
    rate_per_source_per_day: float = DEFAULT_RATE
    sources: tuple[Source, ...] = ()
    world_incident_share: float = 0.007
    """World incidents started per post (each then posted 1–3 times)."""

    @classmethod
    def build(
        cls,
        seed: int = 0,
        rate_per_source_per_day: float = DEFAULT_RATE,
        sources: Iterable[Source] | None = None,
    ) -> GeneratorConfig:
        chosen = tuple(sources) if sources is not None else tuple(load_sources())
        return _interned_config(int(seed), float(rate_per_source_per_day), chosen)

    def source_index(self, source: Source) -> int:
        return self.sources.index(source)


@lru_cache(maxsize=64)
def _interned_config(seed: int, rate: float, chosen: tuple[Source, ...]) -> GeneratorConfig:
    if not chosen:
        raise ValueError("the sandbox needs at least one source")
    for source in chosen:
        if source.network not in NETWORKS:
            raise ValueError(f"unknown network {source.network!r} of source {source.id!r}")
    return GeneratorConfig(seed=seed, rate_per_source_per_day=rate, sources=chosen)


def _author(rng: random.Random, network: str, source: Source, official: bool) -> tuple[str, str]:
    texts = _texts().data
    if official:
        author_id = {"vk": source.id, "ok": source.id, "facebook": source.id, "instagram": source.id}.get(
            network, source.id
        )
        return author_id, source.name
    n = rng.randrange(4000)
    name = f"{texts['first_names'][n % 30]} {texts['last_names'][(n // 30) % 30]}"
    if network == "vk":
        return str(100000 + (n * 7919 + 13) % 800_000_000), name
    if network == "ok":
        return str(510_000_000_000 + n * 104_729), name
    if network == "twitter":
        return str(700_000_000 + n * 15_485_863), name
    if network == "facebook":
        return str(100_004_000_000_000 + n * 982_451_653), name
    handle = base64.b32encode(hashlib.blake2b(str(n).encode(), digest_size=5).digest()).decode().lower()
    return handle, name


def _post_native_id(network: str, source_index: int, hour: int, k: int, ts: datetime, source_id: str) -> str:
    base = hour * 256 + k
    if network == "vk":
        return str(base)
    if network == "ok":
        return f"{base}{source_index:03d}"
    if network == "twitter":
        ms = int(ts.timestamp() * 1000)
        return str(((ms - TWITTER_EPOCH_MS) << 22) | ((source_index & 0x3FF) << 12) | (k & 0xFF))
    if network == "facebook":
        return f"{source_id}_{10_100_000_000_000_000 + base * 1000 + source_index}"
    return str(17_800_000_000_000_000 + base * 1000 + source_index)


def _comment_native_id(
    network: str, source_index: int, hour: int, k: int, j: int, ts: datetime, post_native: str
) -> str:
    base = (hour * 256 + k) * 64 + j
    if network == "vk":
        return str(base)
    if network == "ok":
        ms = int(ts.timestamp() * 1000)
        raw = f"{ms}:-{source_index * 64 + j}:{ms}:{post_native}:{j}"
        return base64.b64encode(raw.encode()).decode()
    if network == "twitter":
        ms = int(ts.timestamp() * 1000)
        return str(
            ((ms - TWITTER_EPOCH_MS) << 22) | ((source_index & 0x3FF) << 12) | (0x100 + (k * 15 + j) % 0xF00)
        )
    if network == "facebook":
        return f"{post_native.split('_')[-1]}_{1_000_000_000_000_000 + base}"
    return str(17_900_000_000_000_000 + base * 1000 + source_index)


# --------------------------------------------------------------------------- world incidents


@dataclass(frozen=True)
class _Echo:
    incident_key: str
    facts: _Facts
    source_index: int
    ts: datetime
    n: int


@lru_cache(maxsize=4096)
def _world(config: GeneratorConfig, hour: int) -> tuple[_Echo, ...]:
    """World incidents first posted in ``hour`` and all their echoes."""
    if hour < WORLD_START_HOUR:
        return ()
    rng = _rng(config.seed, "world", hour)
    sources = config.sources
    mean_posts = (
        config.rate_per_source_per_day / 24.0 * len(sources) * _DIURNAL[(hour + 3) % 24] * _DIURNAL_NORM
    )
    count = _poisson(rng, mean_posts * config.world_incident_share)
    public = [i for i, s in enumerate(sources) if s.kind == "public"] or list(range(len(sources)))
    echoes: list[_Echo] = []
    for n in range(count):
        first = rng.choice(public)
        facts = _draw_facts(rng, sources[first].municipality, hazard=rng.random() < 0.3)
        key = f"s{config.seed}-h{hour}-{n}"
        t0 = datetime.fromtimestamp(hour * HOUR + rng.randrange(HOUR), UTC)
        echoes.append(_Echo(key, facts, first, t0, 0))
        same_place = [
            i
            for i, s in enumerate(sources)
            if i != first
            and (s.municipality == facts.municipality or s.municipality in ("33701", facts.municipality[:5]))
        ]
        others = same_place or [i for i in range(len(sources)) if i != first]
        extra = rng.choice((1, 1, 1, 2, 2)) if others else 0
        other_network = [i for i in others if sources[i].network != sources[first].network]
        for e in range(extra):
            pool = other_network if other_network and rng.random() < 0.8 else others
            index = rng.choice(pool)
            delay = rng.choice(
                (rng.uniform(600, 6 * HOUR), rng.uniform(HOUR, (ECHO_HORIZON_HOURS - 1) * HOUR))
            )
            echoes.append(_Echo(key, facts, index, t0 + timedelta(seconds=int(delay)), e + 1))
    return tuple(echoes)


@lru_cache(maxsize=16384)
def _landing(config: GeneratorConfig, hour: int) -> dict[int, tuple[_Echo, ...]]:
    """World-incident echoes whose post time falls into ``hour``, by source index."""
    out: dict[int, list[_Echo]] = {}
    for h in range(hour - ECHO_HORIZON_HOURS, hour + 1):
        for echo in _world(config, h):
            if int(echo.ts.timestamp()) // HOUR == hour:
                out.setdefault(echo.source_index, []).append(echo)
    return {k: tuple(v) for k, v in out.items()}


# --------------------------------------------------------------------------- per (source, hour)


SOURCE_HOUR_CACHE = 4096
"""(source, hour) renderings kept: a month of all 50 sources is 37,000 of them (about 0.8 KB per
post), which a stream through history would otherwise hold to the end; a Twitter hour needs its
sources' last :data:`COMMENT_HORIZON_HOURS` hours (400 entries), an API page its window's."""


@lru_cache(maxsize=SOURCE_HOUR_CACHE)
def source_hour(config: GeneratorConfig, source_index: int, hour: int) -> tuple[SandboxItem, ...]:
    """The posts one source publishes in one hour (UTC hour index), oldest first, with their comments."""
    if hour < WORLD_START_HOUR:
        return ()
    source = config.sources[source_index]
    network = source.network
    rng = _rng(config.seed, network, source.id, hour)
    lam = config.rate_per_source_per_day / 24.0 * _DIURNAL[(hour + 3) % 24] * _DIURNAL_NORM
    n = min(_poisson(rng, lam), MAX_POSTS_PER_HOUR - 20)
    official = source.kind == "official"
    genres = _GENRES_OFFICIAL if official else _GENRES_PUBLIC
    specs: list[tuple[int, Any, random.Random, str | None]] = []
    for i in range(n):
        specs.append(
            (
                hour * HOUR + rng.randrange(HOUR),
                _weighted(rng, genres),
                _rng(config.seed, network, source.id, hour, i),
                None,
            )
        )
    for echo in _landing(config, hour).get(source_index, ()):
        specs.append(
            (int(echo.ts.timestamp()), echo, _rng(config.seed, echo.incident_key, echo.n), echo.incident_key)
        )
    specs.sort(key=lambda s: (s[0], s[3] or ""))
    posts: list[SandboxItem] = []
    for k, (ts_int, what, prng, key) in enumerate(specs[:MAX_POSTS_PER_HOUR]):
        ts = datetime.fromtimestamp(ts_int, UTC)
        if isinstance(what, _Echo):
            content = _render_incident(what.facts, prng)
            author_official = False
        elif what in ("complaint", "hazard"):
            facts = _draw_facts(prng, source.municipality, hazard=what == "hazard")
            content = _render_incident(facts, prng)
            key = f"s{config.seed}-{network}{source.id}-h{hour}-{k}"
            author_official = False
        else:
            content = _render_plain(what, prng, source.municipality)
            author_official = official or what in ("news", "planned", "greeting")
        if network == "vk" and source.query:
            author_official = False
        author_id, author_name = _author(prng, network, source, author_official)
        native = _post_native_id(network, source_index, hour, k, ts, source.id)
        post = _item(network, source, native, "post", ts, ts, author_id, author_name, content, key, k)
        if network == "vk":
            post.owner_id = author_id if source.query else source.id
        post.comments = _comments(config, source, source_index, hour, k, post, prng)
        posts.append(post)
    return tuple(posts)


@lru_cache(maxsize=1 << 18)
def post_count(config: GeneratorConfig, source_index: int, hour: int) -> int:
    """How many posts :func:`source_hour` gives, without rendering them (for offsets and totals)."""
    if hour < WORLD_START_HOUR:
        return 0
    source = config.sources[source_index]
    rng = _rng(config.seed, source.network, source.id, hour)
    lam = config.rate_per_source_per_day / 24.0 * _DIURNAL[(hour + 3) % 24] * _DIURNAL_NORM
    n = min(_poisson(rng, lam), MAX_POSTS_PER_HOUR - 20)
    return min(n + len(_landing(config, hour).get(source_index, ())), MAX_POSTS_PER_HOUR)


@lru_cache(maxsize=1 << 16)
def day_post_counts(config: GeneratorConfig, network: str, day: int) -> dict[int, tuple[int, ...]]:
    """Posts per hour (24 counts) of one UTC day (``day`` = hour index // 24) for every source of
    ``network``, by source index; computed hour by hour for all those sources at once, so that a
    wall's total since :data:`WORLD_START` costs one pass over the world incidents."""
    indices = [i for i, s in enumerate(config.sources) if s.network == network]
    counts: dict[int, list[int]] = {i: [] for i in indices}
    for hour in range(day * 24, day * 24 + 24):
        for index in indices:
            counts[index].append(post_count(config, index, hour))
    return {i: tuple(c) for i, c in counts.items()}


def _item(
    network: str,
    source: Source,
    native: str,
    kind: str,
    ts: datetime,
    window_time: datetime,
    author_id: str,
    author_name: str,
    content: _Content,
    key: str | None,
    seq: int,
) -> SandboxItem:
    return SandboxItem(
        network=network,
        source_id=source.id,
        native_id=native,
        kind=kind,
        published_at=ts,
        window_time=window_time,
        author_id=author_id,
        author_name=author_name,
        text=content.text,
        geo={"lat": content.geo[0], "lon": content.geo[1]} if content.geo else None,
        genre=content.genre,
        seq=seq,
        is_incident=content.is_incident,
        category=content.category,
        topic=content.topic,
        hazard=content.hazard,
        hazard_type=content.hazard_type,
        municipality=content.municipality,
        settlement_oktmo=content.settlement_oktmo,
        incident_key=key if content.is_incident else None,
    )


def _comments(
    config: GeneratorConfig,
    source: Source,
    source_index: int,
    hour: int,
    k: int,
    post: SandboxItem,
    prng: random.Random,
) -> list[SandboxItem]:
    network = source.network
    count = min(_poisson(prng, 1.6 if source.kind == "public" else 1.0), 60)
    out: list[SandboxItem] = []
    ts_prev = post.published_at
    for j in range(count):
        crng = _rng(config.seed, network, source.id, hour, k, "c", j)
        delay = min(crng.expovariate(1 / (3 * HOUR)), COMMENT_HORIZON_HOURS * HOUR - 60)
        ts = max(ts_prev, post.published_at + timedelta(seconds=int(60 + delay)))
        ts_prev = ts
        genre = _weighted(crng, _COMMENT_GENRES)
        key = None
        if genre == "reply":
            content = _render_plain("reply", crng, source.municipality)
        else:
            content = _render_incident(
                _draw_facts(crng, source.municipality, genre == "hazard"), crng, comment=True
            )
            key = f"s{config.seed}-{network}{source.id}-h{hour}-{k}-c{j}"
        author_id, author_name = _author(crng, network, source, False)
        native = _comment_native_id(network, source_index, hour, k, j, ts, post.native_id)
        window = ts if network == "twitter" else post.published_at
        comment = _item(
            network, source, native, "comment", ts, window, author_id, author_name, content, key, j
        )
        comment.parent_native_id = post.native_id
        comment.owner_id = post.owner_id
        comment.geo = None
        if out and crng.random() < 0.3:
            answered = crng.choice(out)
            if network in _FLAT_THREADS and answered.reply_to_native_id is not None:
                answered = next(c for c in out if c.native_id == answered.reply_to_native_id)
            comment.reply_to_native_id = answered.native_id
        if network in _DELETABLE and crng.random() < 0.04:
            comment.deleted = True
            comment.text = ""
        out.append(comment)
    return out


def warm_up() -> None:
    """Load the text tables now (they are loaded lazily by the first generated item otherwise)."""
    _texts()


def hour_items(config: GeneratorConfig, source_index: int, hour: int) -> list[SandboxItem]:
    """Items of one source whose ``window_time`` falls into ``hour``: posts then their comments
    (Twitter/X: posts and replies by their own time), in stream order."""
    source = config.sources[source_index]
    out: list[SandboxItem] = []
    if source.network == "twitter":
        for post in source_hour(config, source_index, hour):
            out.append(post)
        for h in range(hour - COMMENT_HORIZON_HOURS, hour + 1):
            for post in source_hour(config, source_index, h):
                out.extend(c for c in post.comments if int(c.published_at.timestamp()) // HOUR == hour)
        out.sort(key=lambda i: (i.published_at, i.native_id))
        return out
    for post in source_hour(config, source_index, hour):
        out.append(post)
        out.extend(post.comments)
    return out


# --------------------------------------------------------------------------- public API


def _hour_range(start: datetime, end: datetime) -> range:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return range(int(start.timestamp()) // HOUR, -(-int(end.timestamp()) // HOUR))


def generate(
    start: datetime,
    end: datetime,
    *,
    seed: int = 0,
    rate_per_source_per_day: float = DEFAULT_RATE,
    sources: Iterable[Source] | None = None,
    now: datetime | None = None,
    include_deleted: bool = True,
    config: GeneratorConfig | None = None,
) -> Iterator[SandboxItem]:
    """Stream the items whose ``window_time`` is in ``[start, end)``, hour by hour.

    Within an hour: sources in configuration order, each source's posts oldest first, each
    followed by its comments (Twitter/X: tweets and replies by time). Items published after
    ``now`` (comments still to come) are left out.
    """
    cfg = config or GeneratorConfig.build(seed, rate_per_source_per_day, sources)
    for hour in _hour_range(start, end):
        for index in range(len(cfg.sources)):
            for item in hour_items(cfg, index, hour):
                if not start <= item.window_time < end:
                    continue
                if now is not None and item.published_at > now:
                    continue
                if item.deleted and not include_deleted:
                    continue
                yield item


def ground_truth(
    start: datetime,
    end: datetime,
    seed: int = 0,
    *,
    rate_per_source_per_day: float = DEFAULT_RATE,
    sources: Iterable[Source] | None = None,
    now: datetime | None = None,
    config: GeneratorConfig | None = None,
) -> list[dict[str, Any]]:
    """Ground-truth records of a window, keyed by ``(network, external_id)``; deleted comments excluded."""
    return [
        item.truth()
        for item in generate(
            start,
            end,
            seed=seed,
            rate_per_source_per_day=rate_per_source_per_day,
            sources=sources,
            now=now,
            include_deleted=False,
            config=config,
        )
    ]
