"""Run failure alerts, configured without code changes.

A run-failure sensor (running by default) writes every failed run of this code location to the
daemon's log, and when CTDATA_ALERT_WEBHOOK is set, posts a short JSON message there (Slack's and
Teams' incoming webhooks take the `text` field). CTDATA_DAGSTER_URL, when set, adds a link to
the run in the UI. The environment is read at each failure, so setting or changing a webhook
needs no redeploy, only the daemon's environment."""

from __future__ import annotations

import os

import dagster as dg
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ctdata_pipeline.runs import failure_reason, one_line

ALERT_SENSOR = "run_failure_alert"
WEBHOOK_ENV = "CTDATA_ALERT_WEBHOOK"
UI_URL_ENV = "CTDATA_DAGSTER_URL"
WEBHOOK_TIMEOUT_SECONDS = 10


def alert_text(job: str, partition: str | None, reason: str, link: str | None) -> str:
    where = f" for {partition}" if partition else ""
    text = f"ctdata_pipeline: {job}{where} failed: {reason}"
    return f"{text} ({link})" if link else text


def post_alert(url: str, payload: dict[str, str | None]) -> None:
    """POST the alert, retrying a moment on 5xx and connection errors; raise if it fails."""
    with requests.Session() as session:
        retry = Retry(
            total=2,
            backoff_factor=1.0,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST"}),
        )
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        response = session.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_SECONDS)
        response.raise_for_status()


@dg.run_failure_sensor(
    name=ALERT_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Logs every failed run of this code location, and posts it to CTDATA_ALERT_WEBHOOK "
        "when that is set (no code change needed to turn alerts on)."
    ),
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    steps = context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    reason = failure_reason(entry.dagster_event for entry in steps) or one_line(
        context.failure_event.message or "the run failed"
    )
    partition = run.tags.get("dagster/partition")
    base = os.environ.get(UI_URL_ENV, "").rstrip("/")
    link = f"{base}/runs/{run.run_id}" if base else None
    text = alert_text(run.job_name, partition, reason, link)
    context.log.error(text)
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return
    post_alert(
        url,
        {
            "text": text,
            "job": run.job_name,
            "partition": partition,
            "run_id": run.run_id,
            "link": link,
        },
    )
    context.log.info(f"alert posted to {WEBHOOK_ENV}")
