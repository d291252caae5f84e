"""Social-media incident pipeline for a regional government.

The domain package: network clients, validation, text analysis, places, cases
(models, routing, dedupe, deadlines), statistics and the command line. It does
not import Airflow; the Airflow glue lives in ``plugins/incidents_provider``.
"""

__version__ = "0.1.0"

NETWORKS: tuple[str, ...] = ("vk", "ok", "twitter", "facebook", "instagram")
"""The five monitored networks, by the short names used everywhere (connections, assets, tables)."""

CATEGORIES: tuple[str, ...] = (
    "improvement",
    "housing",
    "roads",
    "transport",
    "waste",
    "power",
    "communications",
    "healthcare",
    "education",
    "social",
    "ecology",
    "other",
)
"""Top level of the rubricator: the fixed category slugs."""

REGION_TZ = "Europe/Kirov"
