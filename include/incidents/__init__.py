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

HAZARD_TYPES: tuple[str, ...] = (
    "open_manhole",
    "pit",
    "railing_at_height",
    "bare_wires",
    "electrical_cabinet",
    "icicles_snow",
    "collapsing_structure",
    "fallen_tree",
    "gas_smell",
    "fire_risk",
    "thin_ice",
    "stray_dogs",
    "icy_sidewalk",
    "traffic_light_out",
    "exposed_rebar",
    "abandoned_building",
    "falling_fence_sign",
    "flooded_basement_wiring",
)
"""Hazard types: danger to life or health now (each covered by at least one rubricator topic)."""

REGION_TZ = "Europe/Kirov"
