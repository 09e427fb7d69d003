"""The Celery app the workers start (`celery -A ctdata_pipeline.celery_app worker -Q dagster`):
dagster-celery's step task, configured from the same environment as the runs
(CTDATA_CELERY_BROKER, CTDATA_CELERY_BACKEND, CTDATA_CELERY_VISIBILITY_TIMEOUT), so that a
task is acknowledged and given back the way the executor expects. A task loads the code
location (`ctdata_pipeline.definitions`) in the worker, from the worker's own environment."""

from __future__ import annotations

from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from ctdata_pipeline.cluster import celery_config
from ctdata_pipeline.settings import CELERY_EXECUTOR, SettingsError, celery_from_env

_celery = celery_from_env()
if _celery is None:
    raise SettingsError(
        f"CTDATA_EXECUTOR must be {CELERY_EXECUTOR} for a Celery worker (with "
        "CTDATA_CELERY_BROKER), the same environment as the runs"
    )

app = make_app(
    {
        "broker": _celery.broker_url,
        "backend": _celery.backend_url,
        "config_source": dict_wrapper({**DEFAULT_CONFIG, **celery_config(_celery)}),
    }
)
execute_plan = create_task(app)
