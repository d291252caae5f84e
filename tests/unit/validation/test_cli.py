"""``python -m incidents validate``: JSONL in, valid JSONL out, quarantine file, exit status."""

from __future__ import annotations

import json

from incidents.cli import main


def line(i, **changes) -> str:
    data = {
        "network": "vk",
        "external_id": f"-72963491_{i}",
        "source_id": "-72963491",  # configured in sources.yaml
        "author_pseudonym": "b" * 32,
        "published_at": "2026-11-01T06:15:00Z",
        "text": f"Отключили свет {i}",
        "kind": "post",
        "parent_external_id": None,
        "url": None,
        "geo": None,
        "raw": {},
    }
    data.update(changes)
    return json.dumps(data, ensure_ascii=False)


ARGS = ["validate", "--network", "vk", "--start", "2026-11-01T06:00:00Z", "--end", "2026-11-01T07:00:00Z"]


def test_valid_to_stdout_quarantine_to_file(tmp_path, capsys):
    src = tmp_path / "posts.jsonl"
    lines = [line(i) for i in range(50)] + [line(99, text="")]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe broken\n\n")
    quarantine = tmp_path / "q.jsonl"
    code = main([*ARGS, "--in", str(src), "--quarantine", str(quarantine), "--docs", str(tmp_path / "docs")])
    out, err = capsys.readouterr()
    assert code == 0
    valid = [json.loads(x) for x in out.splitlines()]
    assert len(valid) == 50 and valid[0]["external_id"] == "-72963491_0"
    bad = [json.loads(x) for x in quarantine.read_text(encoding="utf-8").splitlines()]
    assert {b["expectation"] for b in bad} == {
        "expect_column_value_lengths_to_be_between(text)",
        "not_a_json_object",
    }
    assert "\\xff\\xfe broken" in next(b["raw"] for b in bad if b["expectation"] == "not_a_json_object")
    assert "2 of 52 records failed" in err
    assert (tmp_path / "docs" / "index.html").exists()


def test_exit_1_over_threshold(tmp_path, capsys):
    src = tmp_path / "posts.jsonl"
    src.write_text("\n".join([line(1), line(2, source_id="-1"), "nonsense"]) + "\n", encoding="utf-8")
    code = main([*ARGS, "--in", str(src), "--threshold", "0.5", "--source", "-72963491", "--source", "-2"])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(out.splitlines()) == 1
    assert "expect_column_values_to_be_in_set(source_id): 1" in err
