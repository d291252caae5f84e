"""One hook per social network: a Connection (host = API base URL) → the domain client.

Connections: ``vk_default``, ``ok_default``, ``twitter_default``, ``facebook_default``,
``instagram_default``. The host points either at the real API or at the local sandbox;
the token lives in the password, application keys and the pseudonym key in the extra.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseHook

from incidents.config import ConnectionInfo
from incidents_provider.hooks.case_db import connection_info


class NetworkHook(BaseHook):
    """Base hook: builds the network's client from its Connection."""

    network: str = ""
    conn_name_attr = "conn_id"
    conn_type = "http"

    default_conn_name = ""

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name

    def connection_info(self) -> ConnectionInfo:
        """The Connection as the domain package's ``ConnectionInfo`` (secrets stay inside it)."""
        return connection_info(self.get_connection(self.conn_id))

    def get_conn(self) -> Any:
        """The network's API client."""
        from incidents.collect.pipeline import client_for

        return client_for(self.network, self.connection_info())

    def test_connection(self) -> tuple[bool, str]:
        """Fetch one page of the first monitored source over the last hour."""
        from incidents.collect.errors import ApiError
        from incidents.sources import load_sources

        sources = load_sources(self.network)
        if not sources:
            return False, f"no monitored {self.network} sources are configured"
        end = datetime.now(UTC)
        try:
            pages = self.get_conn().iter_pages(sources[0], end - timedelta(hours=1), end)
            next(iter(pages), None)
        except ApiError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            return False, str(exc)
        return True, f"{self.network} API answered for source {sources[0].id}"


class VkHook(NetworkHook):
    network = "vk"
    default_conn_name = "vk_default"
    hook_name = "VKontakte API"


class OkHook(NetworkHook):
    network = "ok"
    default_conn_name = "ok_default"
    hook_name = "Odnoklassniki API"


class TwitterHook(NetworkHook):
    network = "twitter"
    default_conn_name = "twitter_default"
    hook_name = "Twitter/X API v2"


class FacebookHook(NetworkHook):
    network = "facebook"
    default_conn_name = "facebook_default"
    hook_name = "Facebook Graph API"


class InstagramHook(NetworkHook):
    network = "instagram"
    default_conn_name = "instagram_default"
    hook_name = "Instagram Graph API"


HOOKS: dict[str, type[NetworkHook]] = {
    cls.network: cls for cls in (VkHook, OkHook, TwitterHook, FacebookHook, InstagramHook)
}


def hook_for(network: str, conn_id: str | None = None) -> NetworkHook:
    """The hook of ``network``."""
    return HOOKS[network](conn_id)
