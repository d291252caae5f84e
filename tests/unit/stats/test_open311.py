"""The Open311 GeoReport v2 export validates against the schema and carries the cases of the month."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from incidents.db.models import Category, MonthlyReport, Topic
from incidents.stats.open311 import (
    REQUESTS_SCHEMA,
    SERVICES_SCHEMA,
    Open311Error,
    export_open311,
    open311_requests,
    validate,
)

JAN = date(2019, 1, 1)


def test_export_validates_and_lists_the_month(dataset: Engine, tmp_path: Path) -> None:
    files = export_open311(dataset, JAN, tmp_path)
    services = json.loads(Path(files.services).read_text(encoding="utf-8"))
    requests = json.loads(Path(files.requests).read_text(encoding="utf-8"))
    validate(services, SERVICES_SCHEMA)
    validate(requests, REQUESTS_SCHEMA)
    with dataset.connect() as conn:
        n_topics = conn.scalar(select(func.count()).select_from(Topic))
        n_categories = conn.scalar(select(func.count()).select_from(Category))
        uri = conn.scalar(select(MonthlyReport.open311_uri).where(MonthlyReport.month == JAN))
    assert uri == files.requests
    assert len(services) == n_topics + n_categories
    codes = {s["service_code"] for s in services}
    # opened in January: C1 C2 C3 C4 C6; C5 opened in December but answered and resolved in January;
    # C7 (opened in November, nothing since) is not listed
    assert [r["service_request_id"] for r in requests] == ["1", "2", "3", "4", "5", "6"]
    assert all(r["service_code"] in codes for r in requests)
    by_id = {r["service_request_id"]: r for r in requests}
    c1 = by_id["1"]
    assert c1["status"] == "closed"
    assert c1["requested_datetime"] == "2019-01-10T14:00:00+03:00"  # 11:00 UTC
    assert c1["expected_datetime"] == "2019-01-20T03:00:00+03:00"
    assert c1["updated_datetime"] == "2019-01-12T14:00:00+03:00"  # resolution
    assert c1["address"] == "пгт Арбаж, Арбажский район" and c1["address_id"] == "33602151051"
    assert c1["agency_responsible"] == "Администрация Арбажского района"
    assert c1["media_url"] == "https://example.org/vk/1"
    assert "lat" not in c1
    c4 = by_id["4"]
    assert (c4["lat"], c4["long"]) == (58.6, 49.6)
    assert c4["service_code"] == "improvement_open_manhole"
    assert "На особом контроле" in c4["service_notice"]
    c3 = by_id["3"]
    assert c3["status"] == "open" and c3["address"] == "Афанасьевский район"
    assert "Срок решения: 15.01.2019 03:00" in c3["service_notice"]
    c6 = by_id["6"]
    assert c6["service_code"] == "housing" and c6["status"] == "closed"  # no topic: the category's service
    assert "not_incident" in c6["status_notes"]
    root = ET.parse(files.requests_xml).getroot()
    assert root.tag == "service_requests" and len(root.findall("request")) == 6
    assert root.find("request/service_request_id").text == "1"


def test_february_lists_the_case_resolved_then(dataset: Engine) -> None:
    assert [r["service_request_id"] for r in open311_requests(dataset, "2019-02")] == ["2"]


def test_schema_rejects_bad_documents() -> None:
    good = {
        "service_request_id": "1",
        "status": "open",
        "service_name": "x",
        "service_code": "x",
        "requested_datetime": "2019-01-10T14:00:00+03:00",
        "updated_datetime": "2019-01-10T14:00:00+03:00",
    }
    validate([good], REQUESTS_SCHEMA)
    with pytest.raises(Open311Error, match="requested_datetime"):
        validate([{**good, "requested_datetime": "2019-01-10 14:00"}], REQUESTS_SCHEMA)
    with pytest.raises(Open311Error, match="status"):
        validate([{**good, "status": "resolved"}], REQUESTS_SCHEMA)
    with pytest.raises(Open311Error):
        validate([{"service_code": "x"}], SERVICES_SCHEMA)
