"""``python -m incidents classify``: JSONL posts on stdin → one JSONL analysis per line on stdout.

Input lines: ``{"id", "network", "text"[, "source_municipality"]}``. Output, in input
order: ``{"id", "is_incident", "category", "topic", "hazard", "hazard_type",
"municipality": {"name", "oktmo", "code"} | null, "settlement": {"name", "type", "oktmo"} | null,
"address", "needs_review", "confidence", "explanation", "truncated", "classifier_version"}``
(``settlement`` is only ever an OKTMO settlement; streets, houses and landmarks are ``address``;
``classifier_version`` is the model artifact's hash, so it changes with every retraining). A bad line (not JSON, not UTF-8, no
text, wrong types, too long) yields ``{"id" or "line", "error"}`` and the run goes on;
texts longer than the analysed limit are analysed on their beginning and say so.
Streaming: constant memory whatever the input size. Lines are analysed together, up to
:data:`~incidents.analysis.classifier.SCORE_BLOCK` at a time, with the answers each line gets alone
(:meth:`~incidents.analysis.classifier.Analyzer.analyse_many`), about a third faster than one by
one: the lines each read hands over, answered before the next read. A file (``--input`` or
``< posts.jsonl``) is read in full reads; a pipe or a terminal hands over what has arrived, so none
waits for lines still to come (``zcat posts.jsonl.gz | … classify`` gets blocks, a line typed or
sent alone its answer at once, flushed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from incidents.analysis.classifier import SCORE_BLOCK, Analyzer, default_analyzer, with_fallback

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 8 * 1024 * 1024
"""A line longer than this is rejected without being parsed."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", "-i", help="read this JSONL file instead of stdin")
    parser.add_argument("--output", "-o", help="write to this file instead of stdout")


_Post = tuple[str | int, str, str | None]
"""A line's post to analyse: (id, text, source municipality)."""


def parse_line(raw: bytes, line_no: int) -> dict[str, Any] | _Post:
    """A line's post, or the error record of a bad line."""
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
    except RecursionError:
        return {"line": line_no, "error": "not JSON we read: nested too deeply"}
    if not isinstance(item, dict):
        return {"line": line_no, "error": f"expected a JSON object, got {type(item).__name__}"}
    post_id = item.get("id")
    if not isinstance(post_id, (str, int)) or isinstance(post_id, bool):
        return {"line": line_no, "error": "missing or invalid 'id' (string or integer expected)"}
    text = item.get("text")
    if not isinstance(text, str):
        return {
            "id": post_id,
            "error": "missing 'text'"
            if text is None
            else f"'text' must be a string, not {type(text).__name__}",
        }
    if not text.strip():
        return {"id": post_id, "error": "empty 'text'"}
    source = item.get("source_municipality")
    if source is not None and not isinstance(source, str):
        return {"id": post_id, "error": "'source_municipality' must be a string or null"}
    network = item.get("network")
    if network is not None and not isinstance(network, str):
        return {"id": post_id, "error": "'network' must be a string"}
    return post_id, text, source


def _output(post_id: str | int, source: str | None, result: Any, analyzer: Analyzer) -> dict[str, Any]:
    """The output record of an analysed post (the source's municipality as its fallback place)."""
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


def classify_line(raw: bytes, line_no: int, analyzer: Analyzer) -> dict[str, Any]:
    """The output record for one input line (an error record when the line is bad)."""
    post = parse_line(raw, line_no)
    if isinstance(post, dict):
        return post
    post_id, text, source = post
    return _output(post_id, source, analyzer.analyse(text, source_municipality=source), analyzer)


def _failed(line_no: int, exc: Exception) -> dict[str, Any]:
    log.error("line %d: analysis failed", line_no, exc_info=exc)
    return {"line": line_no, "error": f"analysis failed: {type(exc).__name__}: {exc}"}


def classify_block(lines: Sequence[tuple[int, bytes]], analyzer: Analyzer) -> list[dict[str, Any]]:
    """The output records of one or more ``(line number, line)``, in order: several posts are
    analysed together; a post alone, or every post of a block whose analysis raised, one by one,
    so that only the line that fails gets an error record."""
    records: list[dict[str, Any] | _Post] = [parse_line(raw, line_no) for line_no, raw in lines]
    posts = [(k, post) for k, post in enumerate(records) if not isinstance(post, dict)]
    if len(posts) > 1:
        try:
            results = analyzer.analyse_many(
                [text for _, (_, text, _) in posts], source_municipalities=[src for _, (_, _, src) in posts]
            )
            for (k, (post_id, _, source)), result in zip(posts, results, strict=True):
                records[k] = _output(post_id, source, result, analyzer)
            posts = []
        except Exception as exc:
            log.info("analysing %d lines together failed (%s): one by one", len(posts), exc)
    for k, (post_id, text, source) in posts:
        try:
            result = analyzer.analyse(text, source_municipality=source)
            records[k] = _output(post_id, source, result, analyzer)
        except Exception as one:  # never crash the stream on one post
            records[k] = _failed(lines[k][0], one)
    # every post got its record above; a line is never dropped, whatever went wrong
    return [
        r if isinstance(r, dict) else {"line": n, "error": "not analysed"}
        for (n, _), r in zip(lines, records, strict=True)
    ]


READ_SIZE = 1 << 16
"""Bytes asked of the input at a time (a pipe's usual buffer): a file hands over as many, a pipe what
has arrived."""


def _arrived(src: IO[bytes]) -> Iterator[list[bytes]]:
    """The lines of ``src`` (without their ``\n``) in groups: each group the complete lines that had
    arrived when it was read (``read1`` waits only when nothing has). A line longer than a read is
    joined from its pieces once; the last line may lack its ``\n``."""
    pieces: list[bytes] = []
    while True:
        chunk = src.read1(READ_SIZE)  # type: ignore[attr-defined]
        if not chunk:
            if pieces:
                yield [b"".join(pieces)]
            return
        pieces.append(chunk)
        if b"\n" in chunk:
            lines = b"".join(pieces).split(b"\n")
            last = lines.pop()
            pieces = [last] if last else []
            yield lines


def classify_stream(
    src: IO[bytes], dst: IO[str], analyzer: Analyzer | None = None, *, block: int | None = None
) -> tuple[int, int]:
    """Classify every line of ``src`` into ``dst``; returns (lines, errors). Up to ``block`` lines
    (:data:`SCORE_BLOCK` by default) are analysed together: from a buffered stream (a file, a pipe, a
    terminal) the lines each read hands over, answered before the next read (a file's reads are
    full, a pipe's what has arrived); from any other iterable of lines one by one."""
    analyzer = analyzer or default_analyzer()
    arriving = hasattr(src, "read1")
    block = block or (SCORE_BLOCK if arriving else 1)
    groups: Iterable[list[bytes]] = _arrived(src) if arriving else ([raw] for raw in src)
    lines = errors = 0
    pending: list[tuple[int, bytes]] = []

    def flush() -> None:
        nonlocal errors
        for record in classify_block(pending, analyzer):
            errors += "error" in record
            dst.write(json.dumps(record, ensure_ascii=False) + "\n")
        dst.flush()
        pending.clear()

    line_no = 0
    for group in groups:
        for raw in group:
            line_no += 1
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            lines += 1
            pending.append((line_no, raw))
            if len(pending) >= block:
                flush()
        if arriving and pending:
            flush()  # what has arrived is answered before reading on
    if pending:
        flush()
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
