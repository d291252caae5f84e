"""``python -m incidents classify``: JSONL posts on stdin → one JSONL analysis per line on stdout.

Input lines: ``{"id", "network", "text"[, "source_municipality"]}``. Output, in input
order: ``{"id", "is_incident", "category", "topic", "hazard", "hazard_type",
"municipality": {"name", "oktmo", "code"} | null, "settlement": {"name", "type", "oktmo"} | null,
"address", "needs_review", "confidence", "explanation", "truncated", "classifier_version"}``
(``settlement`` is only ever an OKTMO settlement; streets, houses and landmarks are ``address``;
``classifier_version`` is the model artifact's hash, so it changes with every retraining). A bad line (not JSON, not UTF-8, no
text, wrong types, too long) yields ``{"id" or "line", "error"}`` and the run goes on;
texts longer than the analysed limit are analysed on their beginning and say so.
Streaming: constant memory whatever the input size.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import IO, Any

from incidents.analysis.classifier import Analyzer, default_analyzer, with_fallback

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024 * 1024
"""A line longer than this is rejected without being parsed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", help="read this JSONL file instead of stdin")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")


def classify_line(raw: bytes, line_no: int, analyzer: Analyzer) -> dict[str, Any]:
    """The output record for one input line (an error record when the line is bad)."""
    if len(raw) > MAX_LINE_BYTES:
        return {"line": line_no, "error": f"line too long ({len(raw)} bytes > {MAX_LINE_BYTES})"}
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return {"line": line_no, "error": f"not UTF-8 text: {exc.reason} at byte {exc.start}"}
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"line": line_no, "error": f"not JSON: {exc.msg} (column {exc.colno})"}
    if not isinstance(item, dict):
        return {"line": line_no, "error": f"expected a JSON object, got {type(item).__name__}"}
    post_id = item.get("id")
    where: dict[str, Any] = (
        {"id": post_id}
        if isinstance(post_id, (str, int)) and not isinstance(post_id, bool)
        else {"line": line_no}
    )
    if "id" not in where:
        return {**where, "error": "missing or invalid 'id' (string or integer expected)"}
    text = item.get("text")
    if not isinstance(text, str):
        return {
            **where,
            "error": "missing 'text'"
            if text is None
            else f"'text' must be a string, not {type(text).__name__}",
        }
    if not text.strip():
        return {**where, "error": "empty 'text'"}
    source = item.get("source_municipality")
    if source is not None and not isinstance(source, str):
        return {**where, "error": "'source_municipality' must be a string or null"}
    network = item.get("network")
    if network is not None and not isinstance(network, str):
        return {**where, "error": "'network' must be a string"}
    result = analyzer.analyse(text, source_municipality=source)
    with_fallback(result, source, analyzer.gazetteer)
    return {
        "id": post_id,
        "is_incident": result.is_incident,
        "category": result.category,
        "topic": result.topic,
        "hazard": result.hazard,
        "hazard_type": result.hazard_type,
        "municipality": result.municipality,
        "settlement": result.settlement,
        "address": result.address,
        "needs_review": result.needs_review,
        "confidence": result.confidence,
        "explanation": result.explanation,
        "truncated": result.truncated,
        "classifier_version": getattr(analyzer, "classifier_version", "unknown"),
    }


def classify_stream(src: IO[bytes], dst: IO[str], analyzer: Analyzer | None = None) -> tuple[int, int]:
    """Classify every line of ``src`` into ``dst``; returns (lines, errors)."""
    analyzer = analyzer or default_analyzer()
    lines = errors = 0
    for line_no, raw in enumerate(src, start=1):
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        lines += 1
        try:
            record = classify_line(raw, line_no, analyzer)
        except Exception as exc:  # never crash the stream on one post
            log.exception("line %d: analysis failed", line_no)
            record = {"line": line_no, "error": f"analysis failed: {type(exc).__name__}: {exc}"}
        errors += "error" in record
        dst.write(json.dumps(record, ensure_ascii=False) + "\n")
    dst.flush()
    return lines, errors


def run(args: argparse.Namespace) -> int:
    analyzer = default_analyzer()
    src = open(args.input, "rb") if args.input else sys.stdin.buffer
    dst = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        lines, errors = classify_stream(src, dst, analyzer)
    finally:
        if args.input:
            src.close()
        if args.output:
            dst.close()
    log.info(
        "classified %d lines, %d errors (%s)", lines, errors, getattr(analyzer, "classifier_version", "?")
    )
    return 0
