"""Open311 GeoReport v2 export of one month: ``services.json``, ``requests.json`` and ``requests.xml``.

* Services are the rubricator's topics (``service_code`` = topic slug, ``group`` = category name),
  plus one service per category (``service_code`` = category slug) for cases without a topic.
* Requests are the cases opened or updated in the month (opened, first response, resolution or
  any update within it). ``status`` is ``open`` for new / assigned / in_progress and ``closed`` for
  resolved / rejected. Times are ISO 8601 with the region's offset (``+03:00``). ``lat``/``long`` and
  ``media_url`` come from the case's origin post when known; ``address`` is the settlement and the
  municipality; ``address_id`` the settlement's OKTMO (else the municipality code).

Both documents are validated against the JSON schemas below (written from the GeoReport v2
specification, https://wiki.open311.org/GeoReport_v2) before anything is written.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import jsonschema
from sqlalchemy import ColumnElement, Engine, ScalarSelect, case, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from incidents.db.models import Case, CasePost, Category, Executor, Municipality, Post, Settlement, Topic
from incidents.stats.compute import TZ, as_utc, month_bounds, month_start
from incidents.stats.report import month_dir, record_report, write_atomic

log = logging.getLogger(__name__)

ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$"
_nullable_str = {"type": ["string", "null"]}
_nullable_time = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": ISO_WITH_OFFSET}]}

SERVICES_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "GeoReport v2 service list",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"],
        "properties": {
            "service_code": {"type": "string", "minLength": 1},
            "service_name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"},
            "group": {"type": "string", "minLength": 1},
        },
        "additionalProperties": False,
    },
}

REQUESTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "GeoReport v2 service requests",
    "type": "array",
    "items": {
        "type": "object",
        "required": [
            "service_request_id",
            "status",
            "service_name",
            "service_code",
            "requested_datetime",
            "updated_datetime",
        ],
        "properties": {
            "service_request_id": {"type": "string", "minLength": 1},
            "status": {"enum": ["open", "closed"]},
            "status_notes": _nullable_str,
            "service_name": {"type": "string", "minLength": 1},
            "service_code": {"type": "string", "minLength": 1},
            "description": {"type": ["string", "null"], "maxLength": 4000},
            "agency_responsible": _nullable_str,
            "service_notice": _nullable_str,
            "requested_datetime": {"type": "string", "pattern": ISO_WITH_OFFSET},
            "updated_datetime": {"type": "string", "pattern": ISO_WITH_OFFSET},
            "expected_datetime": _nullable_time,
            "address": _nullable_str,
            "address_id": _nullable_str,
            "zipcode": _nullable_str,
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "media_url": {"type": ["string", "null"], "pattern": "^https?://"},
        },
        "additionalProperties": False,
    },
}

STATUS_NOTES = {
    "new": "Обращение зарегистрировано",
    "assigned": "Передано исполнителю",
    "in_progress": "В работе у исполнителя",
    "resolved": "Проблема решена",
    "rejected": "Обращение отклонено",
}
_STOP = {
    "или",
    "и",
    "на",
    "в",
    "во",
    "по",
    "с",
    "со",
    "к",
    "от",
    "для",
    "при",
    "без",
    "не",
    "из",
    "за",
    "до",
    "о",
}


class Open311Error(ValueError):
    """The export does not conform to the GeoReport v2 schema."""


@dataclass(frozen=True)
class Open311Files:
    """Where the export was written."""

    services: str
    requests: str
    requests_xml: str | None


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in the region's time zone with its offset, to the second."""
    value = as_utc(value)
    return None if value is None else value.astimezone(TZ).replace(microsecond=0).isoformat()


def _keywords(*texts: str | None) -> str:
    words: list[str] = []
    for text in texts:
        for word in re.findall(r"[\w-]+", (text or "").lower()):
            if len(word) > 2 and word not in _STOP and not word.isdigit() and word not in words:
                words.append(word)
    return ", ".join(words[:8])


def open311_services(engine: Engine) -> list[dict[str, Any]]:
    """The service list: one service per topic, one per category (for cases without a topic)."""
    from incidents.reference import load_rubricator

    try:
        hazard_names = load_rubricator().hazard_types
    except Exception as exc:  # descriptions are cosmetic
        log.warning("hazard type names unavailable: %s", exc)
        hazard_names = {}
    with engine.connect() as conn:
        categories = dict(conn.execute(select(Category.slug, Category.name).order_by(Category.slug)).all())
        topics = conn.execute(
            select(
                Topic.slug,
                Topic.category_slug,
                Topic.name,
                Topic.hazard,
                Topic.hazard_type,
                Topic.source_topics,
            ).order_by(Topic.category_slug, Topic.slug)
        ).all()
    services: list[dict[str, Any]] = []
    for t in topics:
        group = categories.get(t.category_slug, t.category_slug)
        description = f"{t.name}. Категория: {group}."
        if t.hazard:
            description += f" Угроза жизни и здоровью: {hazard_names.get(t.hazard_type, t.hazard_type)}."
        services.append(
            {
                "service_code": t.slug,
                "service_name": t.name,
                "description": description,
                "metadata": False,
                "type": "realtime",
                "keywords": _keywords(t.name, group),
                "group": group,
            }
        )
    for slug, name in categories.items():
        services.append(
            {
                "service_code": slug,
                "service_name": f"{name}: прочее",
                "description": f"Обращения категории «{name}» без уточнённой темы.",
                "metadata": False,
                "type": "realtime",
                "keywords": _keywords(name),
                "group": name,
            }
        )
    return services


def _origin_post_id() -> ScalarSelect[int]:
    return (
        select(CasePost.post_id)
        .where(CasePost.case_id == Case.id)
        .order_by(case((CasePost.link == "origin", 0), else_=1), CasePost.linked_at, CasePost.id)
        .limit(1)
        .scalar_subquery()
    )


def open311_requests(engine: Engine, month: date | str) -> list[dict[str, Any]]:
    """The service requests: cases opened or updated in the month (ordered by id)."""
    start, end = month_bounds(month_start(month))

    def within(col: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        return (col >= start) & (col < end)

    stmt = (
        select(
            Case,
            Executor.name.label("executor_name"),
            Municipality.short_name.label("municipality_name"),
            Settlement.type_abbr,
            Settlement.name.label("settlement_name"),
            Topic.name.label("topic_name"),
            Category.name.label("category_name"),
            _origin_post_id().label("origin_post_id"),
        )
        .join(Executor, Executor.code == Case.executor_code)
        .join(Category, Category.slug == Case.category)
        .outerjoin(Municipality, Municipality.code == Case.municipality_code)
        .outerjoin(Settlement, Settlement.oktmo == Case.settlement_oktmo)
        .outerjoin(Topic, Topic.slug == Case.topic)
        .where(
            or_(
                within(Case.opened_at),
                within(Case.updated_at),
                within(Case.first_response_at),
                within(Case.resolved_at),
            )
        )
        .order_by(Case.id)
    )
    with Session(engine) as conn:
        rows = conn.execute(stmt).all()
        post_ids = [r.origin_post_id for r in rows if r.origin_post_id is not None]
        posts: dict[int, Any] = {}
        for i in range(0, len(post_ids), 1000):
            chunk = post_ids[i : i + 1000]
            for p in conn.execute(
                select(Post.id, Post.url, Post.geo_lat, Post.geo_lon).where(Post.id.in_(chunk))
            ):
                posts[p.id] = p
    from incidents.reference import load_rubricator

    try:
        hazard_names = load_rubricator().hazard_types
    except Exception:  # cosmetic
        hazard_names = {}
    return [_request(r, posts.get(r.origin_post_id), hazard_names) for r in rows]


def _request(row: Any, post: Any, hazard_names: dict[str, str]) -> dict[str, Any]:
    c: Case = row.Case
    notes = STATUS_NOTES.get(c.status, c.status)
    if c.status == "assigned":
        notes += f": {row.executor_name}"
    if c.status == "rejected" and c.rejection_reason:
        notes += f" (причина: {c.rejection_reason})"
    notice = []
    if c.hazard_type:
        notice.append(f"Угроза жизни и здоровью: {hazard_names.get(c.hazard_type, c.hazard_type)}")
    if c.special_control:
        notice.append("На особом контроле")
    if c.resolution_due is not None and c.status not in ("resolved", "rejected"):
        notice.append(f"Срок решения: {as_utc(c.resolution_due).astimezone(TZ):%d.%m.%Y %H:%M}")
    times = [
        as_utc(t) for t in (c.opened_at, c.first_response_at, c.resolved_at, c.updated_at) if t is not None
    ]
    place = [
        p
        for p in (
            f"{row.type_abbr} {row.settlement_name}" if row.settlement_name else None,
            row.municipality_name,
        )
        if p
    ]
    request: dict[str, Any] = {
        "service_request_id": str(c.id),
        "status": "closed" if c.status in ("resolved", "rejected") else "open",
        "status_notes": notes,
        "service_name": row.topic_name or f"{row.category_name}: прочее",
        "service_code": c.topic if row.topic_name else c.category,
        "description": (c.summary or "")[:4000],
        "agency_responsible": row.executor_name,
        "service_notice": "; ".join(notice) or None,
        "requested_datetime": iso(c.opened_at),
        "updated_datetime": iso(max(times)),
        "expected_datetime": iso(c.resolution_due),
        "address": ", ".join(place) or None,
        "address_id": c.settlement_oktmo or c.municipality_code,
        "zipcode": None,
        "media_url": post.url if post is not None and post.url and post.url.startswith("http") else None,
    }
    if post is not None and post.geo_lat is not None and post.geo_lon is not None:
        request["lat"] = float(post.geo_lat)
        request["long"] = float(post.geo_lon)
    return request


def validate(document: list[dict[str, Any]], schema: dict[str, Any]) -> None:
    """Raise :class:`Open311Error` with the first violations when ``document`` does not conform."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]
        )
        raise Open311Error(f"{schema['title']}: {len(errors)} violation(s): {detail}")


def requests_xml(requests: list[dict[str, Any]]) -> bytes:
    """The requests in GeoReport v2 XML form (``<service_requests><request>…``)."""
    root = ET.Element("service_requests")
    for r in requests:
        item = ET.SubElement(root, "request")
        for key, value in r.items():
            ET.SubElement(item, key).text = "" if value is None else str(value)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def export_open311(
    engine: Engine, month: date | str, out_dir: Any, *, run_id: str | None = None, xml: bool = True
) -> Open311Files:
    """Validate and write ``<out_dir>/<YYYY-MM>/open311/{services.json,requests.json,requests.xml}``.

    Records the location of ``requests.json`` in ``monthly_reports.open311_uri``.
    """
    month = month_start(month)
    services = open311_services(engine)
    requests = open311_requests(engine, month)
    validate(services, SERVICES_SCHEMA)
    validate(requests, REQUESTS_SCHEMA)
    target = month_dir(out_dir, month) / "open311"
    target.mkdir(parents=True, exist_ok=True)

    def dump(doc: Any) -> bytes:
        return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")

    files = Open311Files(
        services=write_atomic(target, "services.json", dump(services)),
        requests=write_atomic(target, "requests.json", dump(requests)),
        requests_xml=write_atomic(target, "requests.xml", requests_xml(requests)) if xml else None,
    )
    record_report(engine, month, run_id=run_id, open311_uri=files.requests)
    log.info("Open311 export of %s: %d services, %d requests", f"{month:%Y-%m}", len(services), len(requests))
    return files


__all__ = [
    "REQUESTS_SCHEMA",
    "SERVICES_SCHEMA",
    "Open311Error",
    "Open311Files",
    "export_open311",
    "open311_requests",
    "open311_services",
    "validate",
]
