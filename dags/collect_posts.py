"""Collection DAGs: one per network, data intervals ``[start, end)`` (hourly by default)."""

from airflow.sdk import DAG, CronDataIntervalTimetable

from incidents.config import settings
from incidents_provider.defaults import START_DATE, default_args
from incidents_provider.operators.collect import CollectPostsOperator, LoadPostsOperator

# The window length is configuration: hourly in production, daily for the demo's quick backfills.
COLLECT_CRON = settings().collect_cron

NETWORKS = {
    "vk": "VKontakte",
    "ok": "Odnoklassniki",
    "twitter": "Twitter/X",
    "facebook": "Facebook",
    "instagram": "Instagram",
}

DOC = """
### Collect {title} posts

Every hour (`INCIDENTS_COLLECT_CRON`), for the data interval `[data_interval_start, data_interval_end)`:

1. **collect** — calls the {title} API through Connection `{network}_default` (host = API base URL
   or the local sandbox) for every monitored {title} source, lands each raw response page under
   `INCIDENTS_LANDING_URI/{network}/<window>/` and writes the normalised posts as `posts.jsonl`.
   A source the API says is gone (deleted, banned, blocked) is skipped with its reason in the log,
   the XCom and the batch row (`skipped_sources`); a window in which every source was skipped, a
   refused token or a missing permission (both naming the connection) and paging that stopped
   advancing fail the task (never a green run with zero posts).
2. **load** — upserts the window's posts into the case database (`case_db`) by
   (network, external id): reruns and overlapping backfills never duplicate a post. Updates the
   Asset `incidents://posts/{network}`, which triggers `process_posts`.

Each task's XCom shows how many posts the network brought. Runs share the pool `{network}_api`,
so backfills respect the API's limits. Backfill: `airflow backfill create --dag-id collect_{network}
--from-date 2026-11-01 --to-date 2026-11-08`.
"""

for network, title in NETWORKS.items():
    with DAG(
        dag_id=f"collect_{network}",
        description=f"Collect {title} posts and comments of monitored sources",
        schedule=CronDataIntervalTimetable(COLLECT_CRON, timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=4,
        default_args=default_args(),
        tags=["incidents", "collection", network],
        doc_md=DOC.format(title=title, network=network),
    ):
        collect = CollectPostsOperator(task_id="collect", network=network, pool=f"{network}_api")
        load = LoadPostsOperator(task_id="load", network=network)
        collect >> load
