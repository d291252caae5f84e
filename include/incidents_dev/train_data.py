"""Export the project's own labelled texts as training data for the analyser.

    python -m incidents_dev.train_data [--out include/incidents/analysis/data/train]

Writes two JSONL files in the training format of :mod:`incidents.analysis.training`
(``{"id","text","is_incident","category","topic","hazard","hazard_type","municipality",
"other_region"}``):

* ``devset.jsonl``: every item of the development set (``analysis/devset/devset.jsonl``);
* ``sandbox.jsonl``: texts rendered from the sandbox's templates (complaints of every topic,
  hazards of every type the templates cover, and the non-incident genres: chatter, ads,
  questions, thanks, news, announced works, greetings, comment replies), with a fixed seed.

Both sources are the project's own writing (see ``data/DATASETS.md``). The output is
deterministic: the same templates give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path
from typing import Any

from incidents_dev.sandbox import generator as gen

log = logging.getLogger(__name__)

ANALYSIS_DIR = Path(__file__).resolve().parent.parent / "incidents" / "analysis"
DEFAULT_OUT = ANALYSIS_DIR / "data" / "train"
SEED = 20261204
COMPLAINTS = 4200
HAZARDS = 1300
PLAIN = 3600
_PLAIN_GENRES = ("chatter", "ad", "question", "thanks", "news", "planned", "greeting", "reply")


def _row(row_id: str, text: str, **labels: Any) -> dict[str, Any]:
    return {
        "id": row_id,
        "text": text,
        "is_incident": bool(labels.get("is_incident")),
        "category": labels.get("category"),
        "topic": labels.get("topic"),
        "hazard": bool(labels.get("hazard")),
        "hazard_type": labels.get("hazard_type"),
        "municipality": labels.get("municipality"),
        "other_region": False,
    }


def devset_rows() -> list[dict[str, Any]]:
    """Every development-set item (both splits) in the training format."""
    rows = []
    with (ANALYSIS_DIR / "devset" / "devset.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            rows.append(
                _row(
                    "devset-" + item["id"],
                    item["text"],
                    **{k: item[k] for k in ("is_incident", "category", "topic", "hazard", "hazard_type")},
                    municipality=item["municipality"],
                )
            )
    return rows


def sandbox_rows(seed: int = SEED) -> list[dict[str, Any]]:
    """Texts rendered from the sandbox templates with their ground truth."""
    t = gen._texts()
    rng = random.Random(seed)
    codes = sorted(t.places_by_municipality)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(kind: str, content: Any) -> None:
        if content.text in seen:
            return
        seen.add(content.text)
        rows.append(
            _row(
                f"sandbox-{kind}-{len(rows):05d}",
                content.text,
                is_incident=content.is_incident,
                category=content.category,
                topic=content.topic,
                hazard=content.hazard,
                hazard_type=content.hazard_type,
                municipality=content.municipality if content.settlement_oktmo else None,
            )
        )

    for i in range(COMPLAINTS + HAZARDS):
        hazard_type = None
        if i >= COMPLAINTS:
            hazard_type = sorted(t.hazards)[i % len(t.hazards)]
            category, topic, problems = t.hazards[hazard_type]
        else:
            category = sorted(t.complaints)[i % len(t.complaints)]
            topic, _ = rng.choice(t.complaints[category])
        municipality = rng.choice(codes)
        place = gen._pick_place(rng, municipality) if rng.random() < 0.75 else None
        facts = gen._Facts(
            category,
            topic,
            rng.randrange(1_000_000),
            hazard_type,
            place,
            place.municipality if place else municipality,
        )
        add(
            "hazard" if hazard_type else "complaint",
            gen._render_incident(facts, rng, comment=rng.random() < 0.2),
        )
    for i in range(PLAIN):
        genre = _PLAIN_GENRES[i % len(_PLAIN_GENRES)]
        add(genre, gen._render_plain(genre, rng, rng.choice(codes)))
    return rows


def write(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n")
    log.info("wrote %d rows to %s", len(rows), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    write(devset_rows(), args.out / "devset.jsonl")
    write(sandbox_rows(), args.out / "sandbox.jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
