from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from incidents.analysis.classifier import Analyzer
from incidents.analysis.cli import classify_line, classify_stream

ROOT = Path(__file__).resolve().parents[3]
_TEXTS = [
    "Во дворе дома 12 на Ленина открытый люк, ребёнок чуть не упал, провода висят и искрят",
    "Третий день нет света и воды в Кумёнах, УК не отвечает, мусор не вывозят, дорога в ямах",
    "С крыши свисают огромные сосульки прямо над входом в поликлинику, никто не сбивает",
]


LINES = [
    json.dumps({"id": "p1", "network": "vk", "text": "В Кумёнах нет света третий день"}, ensure_ascii=False),
    "this is not json",
    json.dumps({"id": "p2", "network": "ok"}),
    json.dumps({"id": "p3", "network": "vk", "text": 42}),
    json.dumps([1, 2]),
    json.dumps(
        {
            "id": 4,
            "network": "twitter",
            "text": "Яма на дороге, колесо пробил",
            "source_municipality": "33630",
        },
        ensure_ascii=False,
    ),
    json.dumps({"id": "p5", "network": "vk", "text": "Продам гараж со смотровой ямой"}, ensure_ascii=False),
    json.dumps(
        {"id": "p6", "network": "vk", "text": "Открытый люк у школы! " + "х" * 1_000_000},
        ensure_ascii=False,
    ),
]


def test_classify_cli_end_to_end() -> None:
    lines = LINES
    payload = ("\n".join(lines) + "\n").encode() + b"\xff\xfe\x00garbage\n"
    proc = subprocess.run(
        [sys.executable, "-m", "incidents", "classify"],
        input=payload,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(out) == 9  # one line out per line in, in order
    assert out[0]["id"] == "p1" and out[0]["is_incident"] and out[0]["category"] == "power"
    assert out[0]["municipality"]["code"] == "33620" and out[0]["settlement"]["name"] == "Кумены"
    from incidents.analysis.model import artifact_version

    for record in (o for o in out if "error" not in o):
        assert {"address", "needs_review", "classifier_version", "confidence"} <= set(record)
        assert record["classifier_version"] == artifact_version()
    assert out[1] == {"line": 2, "error": out[1]["error"]} and "not JSON" in out[1]["error"]
    assert out[2]["id"] == "p2" and "text" in out[2]["error"]
    assert out[3]["id"] == "p3" and "string" in out[3]["error"]
    assert out[4]["line"] == 5 and "object" in out[4]["error"]
    assert (
        out[5]["id"] == 4
        and out[5]["municipality"]["code"] == "33630"
        and "fallback" in out[5]["explanation"]
    )
    assert out[6]["id"] == "p5" and not out[6]["is_incident"] and not out[6]["hazard"]
    assert out[7]["id"] == "p6" and out[7]["truncated"] and out[7]["hazard_type"] == "open_manhole"
    assert out[8]["line"] == 9 and "UTF-8" in out[8]["error"]
    for record in out:
        if "error" not in record:
            assert set(record) >= {
                "id",
                "is_incident",
                "category",
                "topic",
                "hazard",
                "hazard_type",
                "municipality",
                "settlement",
                "confidence",
                "explanation",
            }


def test_a_file_is_classified_in_blocks_with_the_answers_of_a_pipe(tmp_path: Path) -> None:
    """From a regular file the lines are analysed together (blocks of SCORE_BLOCK); the output is
    byte for byte what the same lines give through a pipe, analysed as they arrive."""
    many = [json.dumps({"id": f"m{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(_TEXTS * 50)]
    payload = ("\n".join([*LINES, *many]) + "\n").encode() + b"\xff\xfe\x00garbage\n"
    source = tmp_path / "posts.jsonl"
    source.write_bytes(payload)
    command = [sys.executable, "-m", "incidents", "classify"]
    piped = subprocess.run(command, input=payload, capture_output=True, cwd=ROOT, timeout=180, check=True)
    with source.open("rb") as fh:  # stdin redirected from a file, as «< posts.jsonl» does
        redirected = subprocess.run(command, stdin=fh, capture_output=True, cwd=ROOT, timeout=180, check=True)
    from_file = subprocess.run(
        [*command, "--input", str(source)], capture_output=True, cwd=ROOT, timeout=180, check=True
    )
    assert len(piped.stdout.decode().splitlines()) == len(LINES) + len(many) + 1
    assert redirected.stdout == from_file.stdout == piped.stdout


class _FailsOn:
    """An analyser that fails on texts containing ``marker``, alone and in blocks."""

    def __init__(self, analyzer: Analyzer, marker: str) -> None:
        self.analyzer, self.marker = analyzer, marker
        self.gazetteer = analyzer.gazetteer
        self.classifier_version = analyzer.classifier_version

    def analyse(self, text: str, **kwargs: Any) -> Any:
        if self.marker in text:
            raise RuntimeError("broken post")
        return self.analyzer.analyse(text, **kwargs)

    def analyse_many(self, texts: list[str], **kwargs: Any) -> Any:
        if any(self.marker in t for t in texts):
            raise RuntimeError("broken post in the block")
        return self.analyzer.analyse_many(texts, **kwargs)


def test_a_block_that_fails_is_analysed_line_by_line(analyzer: Analyzer) -> None:
    """One post whose analysis raises costs only its own line an error record; the lines around
    it, in the same block, get their answers, in order."""
    texts = [*_TEXTS, "СЛОМАННЫЙ пост", "Продам гараж"]
    src = io.BytesIO(
        b"".join(
            json.dumps({"id": i, "text": t}, ensure_ascii=False).encode() + b"\n" for i, t in enumerate(texts)
        )
    )
    for block in (1, 3, 100):
        src.seek(0)
        dst = io.StringIO()
        lines, errors = classify_stream(src, dst, _FailsOn(analyzer, "СЛОМАННЫЙ"), block=block)  # type: ignore[arg-type]
        out = [json.loads(line) for line in dst.getvalue().splitlines()]
        assert (lines, errors, len(out)) == (len(texts), 1, len(texts))
        assert out[3] == {"line": 4, "error": "analysis failed: RuntimeError: broken post"}
        assert [o.get("id") for o in out] == [0, 1, 2, None, 4]
        assert out[0] == classify_line(
            json.dumps({"id": 0, "text": texts[0]}, ensure_ascii=False).encode(), 1, analyzer
        )


class _Arriving:
    """A pipe's side as ``classify`` sees it: ``read1`` hands over what has arrived (given chunks)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def read1(self, size: int = -1) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class _Counting:
    """An analyser that records how many posts each call analyses."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.calls: list[int] = []
        self.gazetteer = analyzer.gazetteer
        self.classifier_version = analyzer.classifier_version

    def analyse(self, text: str, **kwargs: Any) -> Any:
        self.calls.append(1)
        return self.analyzer.analyse(text, **kwargs)

    def analyse_many(self, texts: list[str], **kwargs: Any) -> Any:
        self.calls.append(len(texts))
        return self.analyzer.analyse_many(texts, **kwargs)


def test_a_pipe_is_analysed_as_its_lines_arrive(analyzer: Analyzer) -> None:
    """The complete lines a read hands over are analysed together; a line split between reads waits
    for its end, the last may lack its newline, and blank lines keep their numbers."""
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False).encode() for i, t in enumerate(_TEXTS)]
    last = json.dumps({"id": 3, "text": "Продам гараж"}, ensure_ascii=False).encode()
    chunks = [
        lines[0] + b"\n\n" + lines[1] + b"\n" + lines[2][:10],
        lines[2][10:] + b"\r\n" + last[:5],
        last[5:],
    ]
    counting = _Counting(analyzer)
    dst = io.StringIO()
    assert classify_stream(_Arriving(chunks), dst, counting) == (4, 0)  # type: ignore[arg-type]
    assert counting.calls == [2, 1, 1]
    out = [json.loads(line) for line in dst.getvalue().splitlines()]
    assert [o["id"] for o in out] == [0, 1, 2, 3]
    expected = [
        classify_line(raw, n, analyzer) for n, raw in ((1, lines[0]), (3, lines[1]), (4, lines[2]), (5, last))
    ]
    assert out == json.loads(json.dumps(expected, ensure_ascii=False))


def test_a_line_sent_alone_is_answered_before_the_next_is_sent() -> None:
    """A program feeding ``classify`` one post at a time gets each answer at once: nothing waits for a
    block to fill."""
    import select

    proc = subprocess.Popen(
        [sys.executable, "-m", "incidents", "classify"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i, text in enumerate(_TEXTS):
            proc.stdin.write(json.dumps({"id": i, "text": text}, ensure_ascii=False).encode() + b"\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 180)
            assert ready, f"no answer to line {i + 1} while the input stays open"
            assert json.loads(proc.stdout.readline())["id"] == i
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0 and proc.stdout.read() == b""
    finally:
        proc.kill()


def test_a_line_nested_too_deeply_is_an_error_line(analyzer: Analyzer) -> None:
    """JSON nested deeper than Python's parser goes (it raises RecursionError, not a decoding
    error) is a bad line like any other, alone or in a block."""
    good = json.dumps({"id": 1, "text": _TEXTS[0]}, ensure_ascii=False).encode()
    payload = b"\n".join([good, b"[" * 200_000, good.replace(b'"id": 1', b'"id": 3')]) + b"\n"
    for block in (1, 3):
        dst = io.StringIO()
        lines, errors = classify_stream(io.BytesIO(payload), dst, analyzer, block=block)
        out = [json.loads(line) for line in dst.getvalue().splitlines()]
        assert (lines, errors) == (3, 1) and [o.get("id") for o in out] == [1, None, 3]
        assert out[1] == {"line": 2, "error": "not JSON we read: nested too deeply"}


def test_classify_output_is_the_same_in_every_process() -> None:
    """Reruns give identical label rows: nothing (the explanation's word order, a confidence's
    last digit, which of two village names a word form is taken for) depends on the process's
    string hashing, which Python randomises per process. Over 3,000 training posts, through a
    pipe."""
    from incidents.analysis.training import load_training_data

    shouted = "БУРДЯТА КЛАДБИЩЕ ЗАРОСЛО, К МОГИЛАМ НЕ ПРОЙТИ, МУСОР НЕ ВЫВОЗЯТ 😱 В Заречном"
    texts = [*_TEXTS, shouted, *(e.text for e in load_training_data()[::20][:3000])]
    payload = "".join(
        json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)
    )
    outputs = []
    for seed in ("1", "2", "3"):
        proc = subprocess.run(
            [sys.executable, "-m", "incidents", "classify"],
            input=payload.encode(),
            capture_output=True,
            cwd=ROOT,
            timeout=300,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.append(proc.stdout.decode())
    assert outputs[0] == outputs[1] == outputs[2]
    records = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(records) == len(texts) and all(r["explanation"] for r in records)
    # the shouted village's own name, not Бурденок, which its stem also starts
    assert records[3]["settlement"]["name"] == "Бурдята" and records[3]["municipality"]["code"] == "33614"
