"""The processing stage of a collected batch: validate → analyse → store the labels.

:func:`process_batch` works on the case database, streaming the batch's posts in chunks:

1. **validate** every chunk with the gate (:mod:`incidents.validation.gate`). Failing posts
   go to ``quarantine`` (stage ``validate``, ``record_key`` ``<network>:<external_id>``,
   insert-or-ignore on (stage, record_key), so reruns add nothing). Failing posts **stay in
   the posts table, unanalysed**: their label columns are reset to NULL (``is_incident IS
   NULL`` means "not analysed"), so no later stage routes them. When the failing share of
   the whole batch passes ``max_failed_share`` the stage raises :class:`ValidationFailed`
   after the quarantine is written (the evidence stays) and before anything is analysed.
2. **analyse** the valid posts, skipping those already analysed by the same classifier
   version from the same content (``classifier_version`` and ``analysed_hash`` match): a
   rerun is cheap, a new ``CLASSIFIER_VERSION`` or a changed text re-labels. The source's
   municipality is the fallback place. A chunk's posts go to the analyser together
   (``analyse_many``, when it has it); a post whose analysis raises is quarantined (stage
   ``analyse``) and the batch goes on.
3. **store** the labels (on PostgreSQL one ``UPDATE … FROM unnest(…)`` per chunk, elsewhere
   bulk UPDATEs by primary key), then ``batches.status = "analysed"`` and ``batches.counts``.

:func:`process_records` runs steps 1–2 on in-memory records, without a database.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Engine, String, TextClause, func, select, text, update
from sqlalchemy.orm import Session

from incidents.db.models import LABEL_COLUMNS, Batch, Post, Quarantine, table_of
from incidents.validation.gate import (
    QuarantinedRecord,
    ValidationFailed,
    ValidationReport,
    combine_reports,
    validate_batch,
    write_docs,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

log = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
"""Posts validated and analysed per chunk of a batch. Each GX validation has a fixed cost of
about a quarter of a second (building the suites' metric graphs), so small chunks make it
dominate: in the 1M-post bench (batches of about 6,400 posts) 2,000 took the process stage
457 s, 10,000 took 310 s, for 22 MB more peak memory."""
Fallback = Callable[[Any, str | None], Any]

__all__ = ["ProcessResult", "ValidationFailed", "process_batch", "process_records", "quarantine_records"]


@dataclass(slots=True)
class ProcessResult:
    """What one run of the processing stage did."""

    batch_id: int | None
    network: str
    counts: dict[str, Any]
    """``evaluated``, ``validated``, ``quarantined``, ``analysed``, ``skipped``, ``analysis_errors``,
    ``incidents``, ``hazards`` (the last two over the whole batch, skipped posts included)."""
    report: ValidationReport
    docs_path: Path | None = None
    analysis_errors: list[QuarantinedRecord] = field(default_factory=list)
    labelled: list[dict[str, Any]] = field(default_factory=list)
    """:func:`process_records` only: the valid records with their labels."""


# --------------------------------------------------------------------------- analyzer plumbing


def _resolve_analyzer(
    analyzer: Any, classifier_version: str | None, fallback: Fallback | None
) -> tuple[Any, str, Fallback]:
    """The analyzer, its version and the source-municipality fallback (defaults from incidents.analysis)."""
    if analyzer is None:
        from incidents.analysis.classifier import default_analyzer

        analyzer = default_analyzer()
    version = (
        classifier_version
        or getattr(analyzer, "classifier_version", None)
        or getattr(analyzer, "version", None)
    )
    if version is None:
        from incidents.analysis.classifier import CLASSIFIER_VERSION

        version = CLASSIFIER_VERSION
    if fallback is None:
        from incidents.analysis.classifier import with_fallback

        gazetteer = getattr(analyzer, "gazetteer", None)

        def fallback(result: Any, code: str | None) -> Any:
            return with_fallback(result, code, gazetteer)

    return analyzer, str(version), fallback


def _get(result: Any, name: str) -> Any:
    return result.get(name) if isinstance(result, dict) else getattr(result, name, None)


def _labels(
    result: Any, version: str, content_key: str, now: datetime, text: str | None = None
) -> dict[str, Any]:
    """Post label columns from an analysis result (an ``AnalysisResult`` or its dict form)."""
    municipality = _get(result, "municipality") or None
    settlement = _get(result, "settlement") or None
    labels = {
        "is_incident": bool(_get(result, "is_incident")),
        "category": _get(result, "category"),
        "topic": _get(result, "topic"),
        "hazard": bool(_get(result, "hazard")),
        "hazard_type": _get(result, "hazard_type"),
        "municipality_code": municipality.get("code") if isinstance(municipality, dict) else None,
        "settlement_oktmo": settlement.get("oktmo") if isinstance(settlement, dict) else None,
        "confidence": dict(_get(result, "confidence") or {}),
        "explanation": _get(result, "explanation") or None,
        "classifier_version": version,
        "analysed_at": now,
        "analysed_hash": content_key,
        "address": (_get(result, "address") or None),
        "needs_review": bool(_get(result, "needs_review")),
    }
    if labels["address"]:
        labels["address"] = str(labels["address"])[:200]
    labels["place_key"] = _place_key(result, labels, text)
    return labels


def _place_key(result: Any, labels: dict[str, Any], text: str | None) -> str | None:
    """``posts.place_key`` of an incident (``""`` when its text names no precise place), so that
    routing compares keys without reading texts again; NULL for other posts. The analyser returns
    it with its result (after the source fallback); only a result without one (another analyser,
    an older dict form) is resolved from the text here."""
    if not labels["is_incident"]:
        return None
    if (
        isinstance(result, dict)
        and "place_key" not in result
        or (not isinstance(result, dict) and not hasattr(result, "place_key"))
    ):
        from incidents.analysis.places import post_place_key

        return post_place_key(text or "", labels["municipality_code"], labels["settlement_oktmo"]) or ""
    return _get(result, "place_key") or ""


def content_key(content_hash: str | None, text: str | None) -> str:
    """What the labels are computed from: the collector's ``content_hash``, else the text's SHA-256."""
    if content_hash:
        return content_hash
    return hashlib.sha256((text or "").encode("utf-8", errors="surrogatepass")).hexdigest()


def _source_municipalities() -> dict[tuple[str, str], str]:
    from incidents.sources import source_index

    return {key: src.municipality for key, src in source_index().items()}


def _analyse_one(analyzer: Any, fallback: Fallback, text: str, municipality: str | None) -> Any:
    result = analyzer.analyse(text, source_municipality=municipality)
    return fallback(result, municipality)


def _analyse_texts(
    analyzer: Any, fallback: Fallback, texts: Sequence[str], sources: Sequence[str | None]
) -> list[Any]:
    """Each post's result (after ``fallback``), or the exception its analysis raised; ``sources``
    are the posts' source municipalities.

    An analyser with ``analyse_many`` gets the posts in one call (the trained analyser scores them
    in blocks, with the results it gives one by one); if that call raises, the posts are analysed
    one by one, so that only the post that fails goes to quarantine."""
    many = getattr(analyzer, "analyse_many", None)
    if many is not None:
        try:
            results = many(texts, source_municipalities=sources)
            return [fallback(r, m) for r, m in zip(results, sources, strict=True)]
        except Exception as exc:
            log.info("analysing %d posts together failed (%s): one by one", len(texts), exc)
    out: list[Any] = []
    for post_text, municipality in zip(texts, sources, strict=True):
        try:
            out.append(_analyse_one(analyzer, fallback, post_text, municipality))
        except Exception as exc:
            out.append(exc)
    return out


def _error_record(rec: dict[str, Any], exc: BaseException) -> QuarantinedRecord:
    network, external_id = rec.get("network"), rec.get("external_id")
    raw = json.dumps({k: v for k, v in rec.items() if k != "post_id"}, ensure_ascii=False, default=str)
    return QuarantinedRecord(
        record_key=f"{network}:{external_id}",
        network=network,
        external_id=external_id,
        expectation="",
        reason=f"analysis failed: {type(exc).__name__}: {exc}"[:2000],
        raw=raw,
    )


# --------------------------------------------------------------------------- quarantine


def quarantine_records(
    session: Session,
    stage: str,
    records: Iterable[QuarantinedRecord],
    *,
    run_id: str | None = None,
    batch_id: int | None = None,
) -> int:
    """Insert quarantine rows, ignoring those already there for (stage, record_key); return how many were given."""
    now = datetime.now(UTC)
    rows = [
        {
            "stage": stage,
            "record_key": q.record_key[:200],
            "network": (q.network or None) and q.network[:16],
            "external_id": (q.external_id or None) and q.external_id[:128],
            "reason": q.reason,
            "expectation": (q.expectation or None) and q.expectation[:200],
            "raw": q.raw,
            "run_id": run_id,
            "batch_id": batch_id,
            "created_at": now,
        }
        for q in records
    ]
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    stmt: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(Quarantine)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(Quarantine)
    else:  # pragma: no cover - the project supports these two
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    stmt = stmt.on_conflict_do_nothing(index_elements=["stage", "record_key"])
    session.execute(stmt, rows)
    return len(rows)


# --------------------------------------------------------------------------- the database path


_POST_COLUMNS = (
    Post.id,
    Post.network,
    Post.external_id,
    Post.source_id,
    Post.author_pseudonym,
    Post.published_at,
    Post.text,
    Post.kind,
    Post.parent_external_id,
    Post.url,
    Post.geo_lat,
    Post.geo_lon,
    Post.content_hash,
    Post.classifier_version,
    Post.analysed_hash,
    Post.analysed_at,
)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(row: Any) -> dict[str, Any]:
    """A post row as the normalised JSON record the gate validates (plus ``post_id``)."""
    geo = None
    if row.geo_lat is not None and row.geo_lon is not None:
        geo = {"lat": row.geo_lat, "lon": row.geo_lon}
    return {
        "post_id": row.id,
        "network": row.network,
        "external_id": row.external_id,
        "source_id": row.source_id,
        "author_pseudonym": row.author_pseudonym,
        "published_at": _iso(row.published_at)
        if isinstance(row.published_at, datetime)
        else row.published_at,
        "text": row.text,
        "kind": row.kind,
        "parent_external_id": row.parent_external_id,
        "url": row.url,
        "geo": geo,
    }


def _chunks(engine: Engine, batch_id: int, size: int) -> Iterator[Sequence[Any]]:
    """The batch's posts in id order, ``size`` at a time (keyset pagination: no long-lived cursor)."""
    last = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                select(*_POST_COLUMNS)
                .where(Post.batch_id == batch_id, Post.id > last)
                .order_by(Post.id)
                .limit(size)
            ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _clear_labels(session: Session, ids: Iterable[int]) -> None:
    _write_labels(session, [{"id": i, **dict.fromkeys(LABEL_COLUMNS)} for i in ids])


def _write_labels(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Set the label columns of posts, one row per post (``id`` and every label column).

    On PostgreSQL one ``UPDATE … FROM unnest(<one array per column>)`` writes them all (the ORM's
    bulk update sends one UPDATE per row, about 90 µs each, a third of the analysis time);
    elsewhere the ORM's bulk update by primary key. Both store ``None`` in a JSON column as JSON
    ``null``, as the ORM does."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Post), list(rows))
        return
    params: dict[str, list[Any]] = {"id": [r["id"] for r in rows]}
    for name in LABEL_COLUMNS:
        values = [r[name] for r in rows]
        params[name] = [json.dumps(v) for v in values] if name in _JSON_LABELS else values
    session.execute(_pg_label_update(), params)


_JSON_LABELS = frozenset(c for c in LABEL_COLUMNS if isinstance(table_of(Post).c[c].type, JSON))


@lru_cache(maxsize=1)
def _pg_label_update() -> TextClause:
    """The PostgreSQL statement of :func:`_write_labels` (column types from the model; strings as
    ``text``, so that a value too long for its column fails as it would in a plain UPDATE instead
    of being cut by the cast)."""
    from sqlalchemy.dialects import postgresql

    table = table_of(Post)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def array(name: str) -> str:
        sql_type = table.c[name].type
        element = "TEXT" if isinstance(sql_type, String) else sql_type.compile(dialect=dialect)
        return f"CAST(:{name} AS {element}[])"

    names = ("id", *LABEL_COLUMNS)
    arrays = ", ".join(array(n) for n in names)
    sets = ", ".join(f"{n} = v.{n}" for n in LABEL_COLUMNS)
    return text(
        f"UPDATE {table.name} SET {sets} FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE {table.name}.id = v.id"
    )


def process_batch(
    engine: Engine,
    batch_id: int,
    *,
    analyzer: Any = None,
    run_id: str | None = None,
    max_failed_share: float = 0.05,
    docs_dir: Path | str | None = None,
    known_sources: Iterable[str] | None = None,
    classifier_version: str | None = None,
    fallback: Fallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ProcessResult:
    """Validate, analyse and label the posts of batch ``batch_id``; idempotent per batch.

    ``analyzer`` defaults to the project's :func:`incidents.analysis.classifier.default_analyzer`;
    any object with ``analyse(text, source_municipality=...)`` works (its version is
    ``classifier_version`` or its ``classifier_version``/``version`` attribute, else
    ``CLASSIFIER_VERSION``). ``known_sources`` defaults to the configured sources of the
    batch's network. Raises :class:`ValidationFailed` (after quarantining) when the failing
    share passes ``max_failed_share``; ``LookupError`` when the batch does not exist.
    """
    with Session(engine) as session:
        batch = session.get(Batch, batch_id)
        if batch is None:
            raise LookupError(f"batch {batch_id} does not exist")
        network, window_start, window_end = batch.network, batch.window_start, batch.window_end
    if known_sources is None:
        from incidents.sources import load_sources

        known_sources = {s.id for s in load_sources(network)}
    known = set(known_sources)
    analyzer, version, fallback = _resolve_analyzer(analyzer, classifier_version, fallback)

    # 1. validate, quarantine, collect what needs analysing
    reports: list[ValidationReport] = []
    to_analyse: list[int] = []
    skipped = 0
    for rows in _chunks(engine, batch_id, chunk_size):
        by_id = {row.id: row for row in rows}
        report = validate_batch(
            [_record(r) for r in rows],
            network=network,
            window_start=window_start,
            window_end=window_end,
            known_sources=known,
            max_failed_share=1.0,
            run_id=run_id,
        )
        valid_ids = {rec["post_id"] for rec in report.valid_records}
        failed_ids = [r.id for r in rows if r.id not in valid_ids]
        for pid in sorted(valid_ids):
            row = by_id[pid]
            if (
                row.analysed_at is not None
                and row.classifier_version == version
                and row.analysed_hash == content_key(row.content_hash, row.text)
            ):
                skipped += 1
            else:
                to_analyse.append(pid)
        with Session(engine) as session, session.begin():
            quarantine_records(session, "validate", report.quarantined, run_id=run_id, batch_id=batch_id)
            _clear_labels(session, [i for i in failed_ids if by_id[i].analysed_at is not None])
        report.valid_records = []  # ids are kept above; do not hold every post in memory
        reports.append(report)

    if reports:
        combined = combine_reports(reports, max_failed_share=max_failed_share)
    else:
        combined = validate_batch(
            [],
            network=network,
            window_start=window_start,
            window_end=window_end,
            known_sources=known,
            max_failed_share=max_failed_share,
            run_id=run_id,
        )
    combined.stats["run_id"] = run_id
    if docs_dir is not None:
        combined.docs_path = write_docs(combined, docs_dir)
    counts: dict[str, Any] = {
        "evaluated": combined.stats["evaluated"],
        "validated": combined.stats["valid"],
        "quarantined": combined.stats["failed"],
        "failed_share": round(combined.stats["failed_share"], 6),
    }
    if not combined.success:
        counts["validation_failed"] = True
        _update_batch(engine, batch_id, None, counts, run_id)
        log.error("batch %s failed validation: %s", batch_id, combined.summary())
        raise ValidationFailed(combined.summary(), combined)
    _update_batch(engine, batch_id, "validated", counts, run_id)

    # 2. analyse and store the labels
    munis = _source_municipalities()
    errors: list[QuarantinedRecord] = []
    analysed = 0
    for start in range(0, len(to_analyse), chunk_size):
        ids = to_analyse[start : start + chunk_size]
        with Session(engine) as session:
            rows = session.execute(select(*_POST_COLUMNS).where(Post.id.in_(ids)).order_by(Post.id)).all()
        now = datetime.now(UTC)
        updates: list[dict[str, Any]] = []
        failed: list[QuarantinedRecord] = []
        unanalysed_ids: list[int] = []
        results = _analyse_texts(
            analyzer, fallback, [r.text for r in rows], [munis.get((r.network, r.source_id)) for r in rows]
        )
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Exception):  # one bad post must not stop the batch
                log.warning("analysis of %s:%s failed: %s", row.network, row.external_id, result)
                failed.append(_error_record(_record(row), result))
                unanalysed_ids.append(row.id)
                continue
            updates.append(
                {
                    "id": row.id,
                    **_labels(result, version, content_key(row.content_hash, row.text), now, row.text),
                }
            )
        with Session(engine) as session, session.begin():
            _write_labels(session, updates)
            quarantine_records(session, "analyse", failed, run_id=run_id, batch_id=batch_id)
            _clear_labels(session, unanalysed_ids)
        analysed += len(updates)
        errors.extend(failed)

    with Session(engine) as session:
        incidents, hazards = session.execute(
            select(
                func.count().filter(Post.is_incident.is_(True)),
                func.count().filter(Post.hazard.is_(True)),
            ).where(Post.batch_id == batch_id)
        ).one()
    counts.update(
        analysed=analysed,
        skipped=skipped,
        analysis_errors=len(errors),
        incidents=int(incidents),
        hazards=int(hazards),
        classifier_version=version,
    )
    _update_batch(engine, batch_id, "analysed", counts, run_id)
    log.info("batch %s (%s) processed: %s", batch_id, network, counts)
    return ProcessResult(
        batch_id=batch_id,
        network=network,
        counts=counts,
        report=combined,
        docs_path=combined.docs_path,
        analysis_errors=errors,
    )


def _update_batch(
    engine: Engine, batch_id: int, status: str | None, counts: dict[str, Any], run_id: str | None
) -> None:
    values: dict[str, Any] = {"counts": dict(counts), "updated_at": datetime.now(UTC)}
    if status is not None:
        values["status"] = status
    with Session(engine) as session, session.begin():
        session.execute(update(Batch).where(Batch.id == batch_id).values(**values))


# --------------------------------------------------------------------------- without a database


def process_records(
    records: Iterable[Any],
    *,
    network: str,
    window_start: datetime,
    window_end: datetime,
    known_sources: Iterable[str] | None = None,
    analyzer: Any = None,
    run_id: str | None = None,
    max_failed_share: float = 0.05,
    docs_dir: Path | str | None = None,
    classifier_version: str | None = None,
    fallback: Fallback | None = None,
) -> ProcessResult:
    """Validate and analyse in-memory records (normalised posts); the labels are added to each valid record.

    Raises :class:`ValidationFailed` when the failing share passes ``max_failed_share``.
    Analysis errors are returned in ``analysis_errors`` (that record is left out of ``labelled``).
    """
    if known_sources is None:
        from incidents.sources import load_sources

        known_sources = {s.id for s in load_sources(network)}
    report = validate_batch(
        list(records),
        network=network,
        window_start=window_start,
        window_end=window_end,
        known_sources=set(known_sources),
        max_failed_share=max_failed_share,
        docs_dir=docs_dir,
        run_id=run_id,
    )
    if not report.success:
        raise ValidationFailed(report.summary(), report)
    analyzer, version, fallback = _resolve_analyzer(analyzer, classifier_version, fallback)
    munis = _source_municipalities()
    now = datetime.now(UTC)
    labelled: list[dict[str, Any]] = []
    errors: list[QuarantinedRecord] = []
    records = report.valid_records
    results = _analyse_texts(
        analyzer,
        fallback,
        [rec["text"] for rec in records],
        [munis.get((rec["network"], rec["source_id"])) for rec in records],
    )
    for rec, result in zip(records, results, strict=True):
        if isinstance(result, Exception):  # one bad post must not stop the batch
            errors.append(_error_record(rec, result))
            continue
        labels = _labels(result, version, content_key(rec.get("content_hash"), rec["text"]), now, rec["text"])
        labels["analysed_at"] = _iso(now)
        labelled.append({**rec, **labels})
    counts = {
        "evaluated": report.stats["evaluated"],
        "validated": report.stats["valid"],
        "quarantined": report.stats["failed"],
        "analysed": len(labelled),
        "skipped": 0,
        "analysis_errors": len(errors),
        "incidents": sum(1 for r in labelled if r["is_incident"]),
        "hazards": sum(1 for r in labelled if r["hazard"]),
        "classifier_version": version,
    }
    return ProcessResult(
        batch_id=None,
        network=network,
        counts=counts,
        report=report,
        docs_path=report.docs_path,
        analysis_errors=errors,
        labelled=labelled,
    )
