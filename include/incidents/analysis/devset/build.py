"""Build the labelled development set ``devset.jsonl`` from the hand-written base texts.

    python -m incidents.analysis.devset.build            # rewrite devset.jsonl
    python -m incidents.analysis.devset.build --check    # fail if the file is stale

Every base text (``texts_incidents.py``, ``texts_negatives.py``) is instantiated with one
or two place phrases (``places_data.py``) and sometimes with realistic noise (caps,
emoji, stretched letters, Latin look-alikes, VK mentions, hashtags, a typo). The split
is by base text, fixed and stratified per label: about 30% of the base texts of every
topic/negative kind — with all their variants — are held out, so held-out phrasings
are never seen while writing rules. Deterministic (seeded), no network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

from incidents.analysis.devset.places_data import PLACES
from incidents.analysis.devset.texts_incidents import INCIDENTS
from incidents.analysis.devset.texts_negatives import NEGATIVES

DEVSET_PATH = Path(__file__).resolve().parent / "devset.jsonl"
SEED = 20261101
HELDOUT_SHARE = 0.3

# Places named literally in base texts (not through a slot): substring -> (municipality, settlement).
LITERAL_PLACES: dict[str, tuple[str | None, str | None]] = {
    "На Филейке построят": ("33701-oktyabrsky", "33701000001"),
    "В Кирове выпал": ("33701", "33701000001"),
    "в д. Ключи": (None, None),  # 15 villages called Ключи: the text does not say which
}
_EMOJI = ["😡", "🤬", "😢", "👍", "🙏", "‼️", "😱", "🔥", "🤦\u200d♀️", "😂"]
_HASHTAGS = ["#жалоба", "#помогите", "#безобразие", "#народныйконтроль", "#вопрос"]
_LATIN = str.maketrans({"а": "a", "о": "o", "е": "e", "р": "p", "с": "c", "х": "x", "у": "y"})


def _noise(text: str, rng: random.Random) -> str:
    kind = rng.choice(["lower", "upper", "emoji", "stretch", "latin", "mention", "hashtag", "typo", "none"])
    if kind == "lower":
        return text.lower()
    if kind == "upper":
        return text.upper()
    if kind == "emoji":
        return f"{text} {rng.choice(_EMOJI)}{rng.choice(_EMOJI)}"
    if kind == "stretch":
        words = text.split()
        for i, w in enumerate(words):
            vowels = [j for j, ch in enumerate(w) if ch in "аоеиуяы"]
            if len(w) > 4 and vowels:
                j = vowels[0]
                words[i] = w[:j] + w[j] * 3 + w[j + 1 :]
                break
        return " ".join(words) + "!!!"
    if kind == "latin":
        words = text.split()
        idx = [i for i, w in enumerate(words) if len(w) > 3]
        for i in rng.sample(idx, min(2, len(idx))):
            words[i] = words[i].translate(_LATIN)
        return " ".join(words)
    if kind == "mention":
        return f"[id{rng.randint(1000, 999999)}|{rng.choice(['Ирина', 'Сергей', 'Ольга'])}], {text}"
    if kind == "hashtag":
        return f"{text} {rng.choice(_HASHTAGS)} https://vk.com/wall-{rng.randint(1000, 99999)}_{rng.randint(1, 999)}"
    if kind == "typo":
        words = text.split()
        idx = [i for i, w in enumerate(words) if len(w) > 6 and w.isalpha()]
        if idx:
            i = rng.choice(idx)
            w = words[i]
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        return " ".join(words)
    return text


def _label(key: str) -> dict[str, Any]:
    if key.startswith("neg:"):
        return {"is_incident": False, "category": None, "topic": None, "hazard": False, "hazard_type": None}
    hazard_type, _, topic = key.rpartition(":")
    return {
        "is_incident": True,
        "category": topic.split("_", 1)[0],
        "topic": topic,
        "hazard": bool(hazard_type),
        "hazard_type": hazard_type or None,
    }


def build() -> list[dict[str, Any]]:
    """All labelled items, in a stable order."""
    rng = random.Random(SEED)
    groups: list[tuple[str, list[str]]] = [(k, v) for k, v in INCIDENTS.items() if v]
    groups += [(f"neg:{k}", v) for k, v in NEGATIVES.items()]
    items: list[dict[str, Any]] = []
    for key, texts in groups:
        order = list(range(len(texts)))
        rng.shuffle(order)
        n_held = round(len(texts) * HELDOUT_SHARE) if len(texts) >= 3 else 0
        held = set(order[:n_held])
        for t_index, base in enumerate(texts):
            split = "heldout" if t_index in held else "dev"
            has_slot = "{in}" in base or "{nom}" in base
            n_variants = 2 if has_slot else (2 if rng.random() < 0.5 else 1)
            places = rng.sample(PLACES, n_variants)
            for v in range(n_variants):
                in_phrase, nom_phrase, muni_name, settle_name = places[v]
                muni: str | None = muni_name
                settle: str | None = settle_name
                text = base.replace("{in}", in_phrase).replace("{nom}", nom_phrase)
                if not has_slot:
                    muni = settle = None
                    for marker, (m, s) in LITERAL_PLACES.items():
                        if marker in base:
                            muni, settle = m, s
                if v == 1 or rng.random() < 0.35:
                    text = _noise(text, rng)
                digest = hashlib.sha1(f"{key}|{t_index}|{v}".encode()).hexdigest()[:10]
                items.append(
                    {
                        "id": f"{key.split(':')[-1]}-{t_index}-{v}-{digest}",
                        "text": text,
                        **_label(key),
                        "municipality": muni,
                        "settlement": settle,
                        "split": split,
                        "base": f"{key}#{t_index}",
                    }
                )
    return items


def render(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if devset.jsonl is not up to date")
    args = parser.parse_args(argv)
    content = render(build())
    if args.check:
        current = DEVSET_PATH.read_text(encoding="utf-8") if DEVSET_PATH.exists() else ""
        if current != content:
            sys.stderr.write("devset.jsonl is stale: run python -m incidents.analysis.devset.build\n")
            return 1
        return 0
    DEVSET_PATH.write_text(content, encoding="utf-8")
    sys.stdout.write(f"wrote {content.count(chr(10))} items to {DEVSET_PATH}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
