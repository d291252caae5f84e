"""The one normalised post schema every network client produces."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class NormalizedPost:
    """A post or comment as every later stage sees it, whatever network it came from.

    ``author_pseudonym`` is a keyed hash (see :func:`pseudonymize`): raw author ids and
    names never leave the client. ``raw`` keeps the original item for audit.
    """

    network: str
    external_id: str
    source_id: str
    author_pseudonym: str
    published_at: datetime
    text: str
    kind: str = "post"
    parent_external_id: str | None = None
    url: str | None = None
    geo: dict[str, float] | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``published_at`` as ISO 8601 UTC with ``Z``)."""
        data = asdict(self)
        data["published_at"] = self.published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> NormalizedPost:
        values = dict(data)
        published = values["published_at"]
        if isinstance(published, str):
            published = datetime.fromisoformat(published.replace("Z", "+00:00"))
        values["published_at"] = published.astimezone(UTC)
        return cls(**values)


def pseudonymize(network: str, author_id: str | int | None, key: str) -> str:
    """Keyed hash (HMAC-SHA256, 32 hex chars) of an author id; the key comes from a Connection."""
    if author_id is None or author_id == "":
        return "anonymous"
    digest = hmac.new(key.encode(), f"{network}:{author_id}".encode(), hashlib.sha256).hexdigest()
    return digest[:32]
