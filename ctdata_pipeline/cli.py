"""`ctdata`: the nightly job and the offline demo, recorded in the Dagster instance."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import click
import dagster as dg
import duckdb
from filelock import FileLock

from ctdata_pipeline.backup.folder import newest_backup
from ctdata_pipeline.backup.restore import RestoreRefused, restore_backup
from ctdata_pipeline.backup.retention import KeepPolicy, RetentionError
from ctdata_pipeline.backup.take import BackupRefused, take_backup
from ctdata_pipeline.board.verify import MAX_DETAILS, WarehouseDamaged, verify_file
from ctdata_pipeline.board.whole_night import OK, WHOLE_NIGHT, whole_night_outcomes
from ctdata_pipeline.catalog.importer import (
    ImportRefused,
    check_importable_night,
    import_archive,
)
from ctdata_pipeline.code_location import live_definitions
from ctdata_pipeline.delivery.assets import digest_schedule
from ctdata_pipeline.delivery.model import AGENCY_DIGESTS, BOARD_DIGEST, DigestKind, Period
from ctdata_pipeline.delivery.recipients import RecipientsError, load_recipients
from ctdata_pipeline.delivery.smtp import SmtpSettings
from ctdata_pipeline.demo.definitions import demo_definitions, demo_peers_from_env
from ctdata_pipeline.demo.generator import DEMO_NIGHTS
from ctdata_pipeline.demo.peers import EXPECTED_TO_FAIL, PeersMissing, corpus_folder
from ctdata_pipeline.demo.portals import DEMO_MAX_NIGHTS, demo_portal_file
from ctdata_pipeline.demo.recipients import write_demo_recipients
from ctdata_pipeline.demo.resources import DemoPortalClient
from ctdata_pipeline.failures import failing_clearly
from ctdata_pipeline.jobs import (
    AGENCY_DIGEST_JOB,
    BOARD_DIGEST_JOB,
    NIGHTLY_JOB,
    PROBE_JOB,
    RECOMPUTE_JOB,
    REPORT_JOB,
    WHOLE_NIGHT_JOB,
)
from ctdata_pipeline.launch import LaunchRequest, RunOutcome, launch_waves
from ctdata_pipeline.metrics.targets import judge, movement
from ctdata_pipeline.partitions import night_key, today_in_new_york
from ctdata_pipeline.portals import PortalFile, PortalFileError, Target
from ctdata_pipeline.report.data import load_night
from ctdata_pipeline.report.peers import OBSERVATORY_PAGE, not_measured, rankings
from ctdata_pipeline.runs import fail_abandoned_runs, progress_line
from ctdata_pipeline.settings import Settings, SettingsError
from ctdata_pipeline.warehouse import WarehouseLocked, WarehouseNameError, scalar

HARVEST_ASSET = "harvested_catalog"
# The asset (and op) that stores a night: where a run's accept_shrink goes.
CATALOG_ASSET = "catalog_snapshot"
DAGSTER_YAML = """\
# Written by ctdata: the Dagster instance that records ctdata's runs (and `dagster dev`'s).
telemetry:
  enabled: false
concurrency:
  pools:
    # Steps that write the DuckDB file share the pool "duckdb": one at a time, across runs.
    default_limit: 1
"""


@dataclass(frozen=True)
class NightResult:
    snapshot_date: date
    portal: str
    success: bool
    reason: str
    run_id: str

    @property
    def status(self) -> str:
        # Harvest errors already name their portal; the line says it once.
        return "ok" if self.success else f"FAILED: {self.reason.removeprefix(self.portal + ': ')}"

    def failure(self, dated: bool = True) -> str:
        where = f"{self.snapshot_date} {self.portal}" if dated else self.portal
        return f"{where}: {self.status.removeprefix('FAILED: ')}"


def ensure_dagster_home(cwd: Path | None = None) -> Path:
    """DAGSTER_HOME as Dagster wants it (absolute, existing, with a dagster.yaml): the one set in
    the environment, else ./dagster_home, created when missing."""
    value = os.environ.get("DAGSTER_HOME")
    home = Path(value).expanduser() if value else (cwd or Path.cwd()) / "dagster_home"
    home = home.resolve()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        _fail(f"ctdata: DAGSTER_HOME {home} cannot be created: {error.strerror or error}", code=2)
    os.environ["DAGSTER_HOME"] = str(home)
    # Two first runs at once (one per portal) would both create the instance's SQLite tables
    # and one would fail; whoever holds the lock creates them, the other finds them made.
    with FileLock(home / ".ctdata-init.lock"):
        config = home / "dagster.yaml"
        if not config.exists():
            config.write_text(DAGSTER_YAML, encoding="utf-8")
        if not (home / "history").exists():
            dg.DagsterInstance.get().dispose()
    return home


def database(
    path: Path, read_only: bool = False
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The DuckDB file, opened the way the pipeline's steps open it (a clear failure if not,
    also when another process holds its lock past CTDATA_LOCK_WAIT_SECONDS)."""
    return Settings.from_env().warehouse(path).get_connection(read_only=read_only)


def served_portals(settings: Settings, command: str) -> tuple[dg.Definitions, PortalFile, str]:
    """The definitions and portal file the code location serves, chosen as it chooses them
    (CTDATA_DEPLOYMENT=demo: the demo's), so a command's partitions are the UI's; and where
    the portals come from, for messages."""
    try:
        if os.environ.get("CTDATA_DEPLOYMENT", "live") == "demo":
            client = DemoPortalClient(
                last_night=today_in_new_york().isoformat(), peers=demo_peers_from_env()
            )
            return demo_definitions(settings, client), client.portal_file(), "the demo"
        return live_definitions(settings), settings.load_portals(), str(settings.portals_file)
    except PortalFileError as error:
        _fail(f"ctdata {command}: {error}", code=2)


def refuse_unknown_portals(
    command: str, names: Sequence[str], portals: PortalFile, source: str
) -> None:
    """One line for portal names the portal file does not have (a demo portal's name hints
    at CTDATA_DEPLOYMENT=demo, whose portal file has them)."""
    unknown = sorted(set(names) - set(portals.names))
    if not unknown:
        return
    demo_names = set(demo_portal_file(last_night=today_in_new_york()).names)
    hint = ""
    if set(unknown) <= demo_names and source != "the demo":
        hint = " (a demo portal: run the command with CTDATA_DEPLOYMENT=demo)"
    named = ", ".join(repr(name) for name in unknown)
    _fail(f"ctdata {command}: no portal named {named} in {source}{hint}", 2)


@contextmanager
def recording_instance() -> Iterator[dg.DagsterInstance]:
    """The DAGSTER_HOME instance, after closing the books on runs a killed ctdata left open."""
    with dg.DagsterInstance.get() as instance:
        abandoned = fail_abandoned_runs(instance)
        if abandoned:
            click.echo(
                f"ctdata: {len(abandoned)} run(s) left unfinished by a ctdata process that was "
                f"stopped are now marked failed: {', '.join(abandoned)}",
                err=True,
            )
        yield instance


def run_nights(
    defs: dg.Definitions,
    nights: Sequence[tuple[date, str]],
    instance: dg.DagsterInstance,
    log_level: str,
    job_name: str = NIGHTLY_JOB,
    accept_shrink: bool = False,
    reports: Sequence[date] = (),
    probes: bool = False,
    on_done: Callable[[RunOutcome], None] | None = None,
) -> list[NightResult]:
    """Run a job for each (night, portal), a night's portals side by side and the nights in
    order, then the Board report of each of `reports`; every run is recorded under its job.
    `accept_shrink` (a job that stores the snapshot) goes into each run's config, where the
    Launchpad puts it too. `probes`: after each night's runs, the probe job of every portal
    whose run succeeded (nightly -> probes -> reports, as the schedules order them; a night
    that stored nothing has nothing to probe), labelled "<portal> probes". `on_done` hears of
    each run as it finishes."""
    config = _run_config(log_level)
    if accept_shrink:
        config["ops"] = {CATALOG_ASSET: {"config": {"accept_shrink": True}}}
    by_night: dict[date, list[LaunchRequest]] = {}
    for night, portal in nights:
        request = LaunchRequest(job_name, night_key(night, portal), night, portal, config)
        by_night.setdefault(night, []).append(request)
    waves = [by_night[night] for night in sorted(by_night)]
    outcomes = []
    if probes:
        # Each night's probes wait for its runs: which portals to probe depends on them.
        for wave in waves:
            done = launch_waves(defs, [wave], instance, on_done)
            outcomes.extend(done)
            stored = [(o.request.night, o.request.label) for o in done if o.success]
            outcomes.extend(launch_waves(defs, [probe_wave(stored, log_level)], instance))
        waves = []
    outcomes.extend(launch_waves(defs, [*waves, *report_waves(reports, log_level)], instance))
    return [
        NightResult(o.request.night, o.request.label, o.success, o.reason, o.run_id)
        for o in outcomes
    ]


def probe_wave(stored: Sequence[tuple[date, str]], log_level: str) -> list[LaunchRequest]:
    """The probe runs of the (night, portal)s whose night was stored, "<portal> probes"."""
    return [
        LaunchRequest(
            PROBE_JOB, night_key(night, portal), night, f"{portal} probes", _run_config(log_level)
        )
        for night, portal in stored
    ]


def report_waves(reports: Sequence[date], log_level: str) -> list[list[LaunchRequest]]:
    return [
        [LaunchRequest(REPORT_JOB, night.isoformat(), night, "report", _run_config(log_level))]
        for night in reports
    ]


def run_whole_night(
    defs: dg.Definitions,
    night: date,
    portals: Sequence[str],
    instance: dg.DagsterInstance,
    log_level: str,
    probed: Collection[str],
) -> list[NightResult]:
    """The night of `portals` in one run of whole_night_job, then the probe runs of the
    `probed` portals it stored, then the night's report; one result per portal (read from the
    run's outcomes), then the probes' and the report's."""
    config = _run_config(log_level)
    config["ops"] = {WHOLE_NIGHT: {"config": {"portals": list(portals)}}}
    request = LaunchRequest(WHOLE_NIGHT_JOB, night.isoformat(), night, "whole night", config)
    [run] = launch_waves(defs, [[request]], instance)
    told = whole_night_outcomes(instance, run.run_id) if run.success else {}
    results = [
        NightResult(
            night,
            portal,
            told.get(portal) == OK,
            told.get(portal, run.reason or f"run {run.run_id} stopped before it"),
            run.run_id,
        )
        for portal in portals
    ]
    stored = [(night, r.portal) for r in results if r.success and r.portal in probed]
    later = launch_waves(
        defs, [probe_wave(stored, log_level), *report_waves([night], log_level)], instance
    )
    return results + [
        NightResult(o.request.night, o.request.label, o.success, o.reason, o.run_id) for o in later
    ]


# kind -> (its job, its asset: the op its run config names)
DIGEST_JOBS: dict[DigestKind, tuple[str, str]] = {
    "board": (BOARD_DIGEST_JOB, BOARD_DIGEST),
    "agency": (AGENCY_DIGEST_JOB, AGENCY_DIGESTS),
}


@dataclass(frozen=True)
class DigestResult:
    kind: DigestKind
    period: Period
    success: bool
    reason: str
    eml_files: tuple[Path, ...]  # a dry run's

    @property
    def label(self) -> str:
        return f"{self.kind} digest {self.period.key} ({self.period.words})"


def run_digests(
    defs: dg.Definitions,
    settings: Settings,
    kinds: Sequence[DigestKind],
    day: date,
    instance: dg.DagsterInstance,
    log_level: str,
    dry_run: bool,
) -> list[DigestResult]:
    """One run of each digest job, for the period (of the recipients file's schedule) holding
    `day`, one after another (each records its sends in the DuckDB file), as the digest
    schedules make them; `dry_run` goes into the run config, where the Launchpad puts it."""
    cadences = digest_schedule(settings.recipients_file)
    results = []
    for kind in kinds:
        job_name, asset = DIGEST_JOBS[kind]
        period = Period.containing(cadences.board if kind == "board" else cadences.agencies, day)
        config = _run_config(log_level) | {"ops": {asset: {"config": {"dry_run": dry_run}}}}
        request = LaunchRequest(job_name, period.key, period.start, f"{kind} digest", config)
        [outcome] = launch_waves(defs, [[request]], instance)
        written = _eml_files(instance, outcome.run_id) if outcome.success else ()
        results.append(DigestResult(kind, period, outcome.success, outcome.reason, written))
    return results


def _eml_files(instance: dg.DagsterInstance, run_id: str) -> tuple[Path, ...]:
    """The .eml files a dry run wrote, as its materialization says."""
    files: list[Path] = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is not None and "eml_files" in materialization.metadata:
            files.extend(Path(p) for p in materialization.metadata["eml_files"].value)
    return tuple(files)


def _run_config(log_level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def _quiet_library_warnings() -> None:
    # Dagster's beta/preview notices speak to framework authors, not to the person running ctdata.
    import warnings

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("dagster").setLevel(logging.WARNING)


# Unattended runs (cron) mail whatever reaches stderr: by default only the one-line failures do.
# Dagster logs nothing at CRITICAL itself, so the runs' logs stay in the runs (the UI, `dagster
# debug`) unless asked for here.
log_level_option = click.option(
    "--log-level",
    default="critical",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
    callback=lambda _context, _parameter, value: value.upper(),
    help="Also print the runs' Dagster logs from this level on (to stderr).",
)


class _Commands(click.Group):
    """Every command ends a failure it did not expect the same way: one line on stderr."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except dg.Failure as failure:  # storage faults met outside a run (see failures.py)
            _fail(f"ctdata {ctx.invoked_subcommand}: {failure.description}", code=1)
        except (SettingsError, WarehouseNameError) as error:  # the environment, before any run
            _fail(f"ctdata {ctx.invoked_subcommand}: {error}", code=2)


@click.group(cls=_Commands)
def main() -> None:
    """ctdata: Connecticut's open data plan metrics, harvested nightly for the DATA Board."""
    _quiet_library_warnings()


class NightProgress:
    """A line as each portal's night finishes: how many of how many, how many failed, and the
    time since the night began (what someone watching a thousand portals wants to know)."""

    def __init__(self, portals: int) -> None:
        self.portals = portals
        self.done = 0
        self.failed = 0
        self.started = time.monotonic()

    def __call__(self, outcome: RunOutcome) -> None:
        if outcome.request.job_name != NIGHTLY_JOB:
            return
        self.done += 1
        self.failed += not outcome.success
        elapsed = time.monotonic() - self.started
        label, ok = outcome.request.label, outcome.success
        click.echo(progress_line(self.done, self.portals, self.failed, elapsed, label, ok))


@main.command()
@click.option("--portal", "portals", multiple=True, help="Only this portal (repeatable).")
@log_level_option
@click.option(
    "--accept-shrink",
    is_flag=True,
    help="Store tonight even if it is far smaller than the stored snapshot of tonight or the "
    "last good one before it (the shrink guard refuses it otherwise). Use with --portal.",
)
@click.option(
    "--one-run",
    is_flag=True,
    help="Run tonight's portals in one Dagster run (whole_night_job): harvests side by side, "
    "one request at a time per host, each portal stored as it arrives. For portal files of "
    "hundreds of portals; each portal's status still shows under its own partitions.",
)
def nightly(portals: tuple[str, ...], log_level: str, accept_shrink: bool, one_run: bool) -> None:
    """Run tonight's job: harvest every portal for today's New York date and store it."""
    settings = Settings.from_env()
    defs, portal_file, source = served_portals(settings, "nightly")
    names = list(portals) or portal_file.names
    refuse_unknown_portals("nightly", names, portal_file, source)
    if one_run and accept_shrink:
        _fail(
            "ctdata nightly: --accept-shrink is for one portal's own run (--portal NAME), "
            "not --one-run",
            2,
        )
    ensure_dagster_home()
    tonight = today_in_new_york()
    with recording_instance() as instance:
        if one_run:
            probed = {name for name in names if portal_file.get(name).probes.enabled}
            results = run_whole_night(defs, tonight, names, instance, log_level, probed)
        else:
            results = run_nights(
                defs,
                [(tonight, name) for name in names],
                instance,
                log_level,
                accept_shrink=accept_shrink,
                reports=[tonight],
                probes=True,
                on_done=NightProgress(len(names)),
            )
    for result in results:
        click.echo(f"{result.snapshot_date} {result.portal}: {result.status}")
    click.echo(f"Report:        {settings.report_dir / tonight.isoformat() / 'report.html'}")
    click.echo(f"Readers' copy: {settings.published_database}")
    _fail_on_failures("nightly", results, dated=False)


@main.command()
@click.option(
    "--nights",
    default=DEMO_NIGHTS,
    show_default=True,
    type=click.IntRange(1, DEMO_MAX_NIGHTS),
    help="How many nights to simulate, ending today.",
)
@click.option("--seed", default=2025, show_default=True, help="Seed of the generated catalogs.")
@click.option(
    "--peers",
    is_flag=True,
    help="Also harvest peer portals made from real feeds of the national corpus "
    "(../shared/realdata/national/latest, or CTDATA_SHARED_DIR), on the last night, and "
    "compare Connecticut's portals with them.",
)
@log_level_option
def demo(nights: int, seed: int, log_level: str, peers: bool) -> None:
    """Run the real job offline against generated demo portals, for several simulated nights."""
    started = time.monotonic()
    settings = Settings.from_env()
    if peers:
        try:
            corpus_folder()
        except PeersMissing as error:
            _fail(f"ctdata demo: {error}", code=2)
        # A peer that fails (the corpus's 0-byte feed) would answer the same on a retry:
        # the demo does not wait CTDATA_HARVEST_RETRY_DELAY for it unless told to.
        if "CTDATA_HARVEST_RETRIES" not in os.environ:
            settings = replace(settings, harvest_retries=0)
    if settings.recipients_file is None:
        # The demo addresses its digests to example.org; they are only written (a dry run).
        recipients = write_demo_recipients(settings.db_path.parent)
        settings = replace(settings, recipients_file=recipients)
    home = ensure_dagster_home()
    last_night = today_in_new_york()
    client = DemoPortalClient(
        last_night=last_night.isoformat(), nights=nights, seed=seed, peers=peers
    )
    story = client.story()
    defs = demo_definitions(settings, client)
    portal_file = client.portal_file()
    portal_names, peer_names = portal_file.own_names, portal_file.peer_names
    click.echo(
        f"ctdata demo: {nights} nights ({story.first_night} to {story.last_night}) of "
        f"{', '.join(portal_names)}, served on loopback"
        + (f", and {len(peer_names)} peers on the last night" if peer_names else "")
    )
    plan = [(night, name) for night in story.night_dates() for name in portal_names]
    with recording_instance() as instance:
        # A report for every night, as the nightly schedule writes them, oldest first (the
        # newest ends as latest/), after every night is stored: the index lists them all.
        # The peers (one run each) only on the last night, unprobed, before the reports.
        results = run_nights(
            defs,
            plan,
            instance,
            log_level,
            reports=[] if peer_names else story.night_dates(),
            probes=True,
        )
        if peer_names:
            results += run_nights(
                defs,
                [(story.last_night, name) for name in peer_names],
                instance,
                log_level,
                reports=story.night_dates(),
            )
        # The digests of the periods holding the last night, as .eml files in the outbox.
        digest_results = run_digests(
            defs, settings, list(DIGEST_JOBS), story.last_night, instance, log_level, True
        )
    _print_demo_snapshots(settings.db_path, portal_names, story.night_dates())
    _print_headlines(
        settings.db_path,
        portal_names,
        story.first_night,
        story.last_night,
        portal_file.targets,
    )
    expected = [
        result
        for result in results
        if not result.success and result.portal in EXPECTED_TO_FAIL and peer_names
    ]
    if peer_names:
        _print_peers(settings.db_path, portal_file, story.last_night, results)
        if expected:
            click.echo(
                "  (expected: a 0-byte feed of the corpus, which the report names as not "
                "measured; the demo still succeeds)"
            )
        observatory = settings.report_dir / story.last_night.isoformat() / OBSERVATORY_PAGE
        click.echo(f"Observatory:   {observatory}")
    if settings.lake:
        click.echo(f"Warehouse:     {settings.warehouse().location}")
    else:
        click.echo(f"DuckDB file:   {settings.db_path}")
    click.echo(
        f"Report:        {settings.report_dir / story.last_night.isoformat() / 'report.html'}"
    )
    click.echo(f"All reports:   {settings.report_dir / 'index.html'}")
    click.echo(f"Readers' copy: {settings.published_database} (open this one with tools)")
    _print_demo_digests(digest_results, settings.recipients_file)
    click.echo(f"Dagster home:  {home} ({len(results) + len(digest_results)} runs recorded)")
    click.echo(f"Wall time:     {time.monotonic() - started:.1f}s")
    for result in digest_results:
        if not result.success:
            click.echo(f"ctdata demo: {result.label}: {result.reason}", err=True)
    _fail_on_failures("demo", [result for result in results if result not in expected])
    if not all(result.success for result in digest_results):
        sys.exit(1)


def _print_peers(
    db_path: Path, portal_file: PortalFile, night: date, results: Sequence[NightResult]
) -> None:
    """Connecticut among its peers on the night: each Board portal's MD-1 with its rank among
    every portal measured, the peers' median and the best peer (the report's numbers)."""
    reasons = {r.portal: r.reason for r in results if r.snapshot_date == night and not r.success}
    with database(db_path, read_only=True) as conn:
        report = load_night(
            conn,
            night,
            portal_file,
            why_absent=lambda name: (
                "its harvest failed: " + reasons.get(name, "no snapshot").removeprefix(f"{name}: ")
            ),
        )
    md1 = next(r for r in rankings(report) if r.compared.metric_id == "MD-1")
    click.echo(
        f"\nConnecticut among its peers, {night}: MD-1 missing metadata ({md1.better} is "
        f"better), {len(md1.peers)} of {len(report.peers)} peers measured"
    )
    click.echo(f"  {'portal':<24} {'MD-1':>7}  {'rank':<9} {'peers median':>12}  best peer")
    median = md1.peer_median
    best = md1.best_peer
    for portal in report.portals:
        mine = md1.rank_of(portal.name)
        click.echo(
            f"  {portal.name:<24} {_percent(mine.value.value if mine else None):>7}  "
            f"{f'{mine.rank} of {len(md1.ranked)}' if mine else 'n/a':<9} "
            f"{_percent(median):>12}  "
            + (f"{best.portal.name} ({_percent(best.value.value)})" if best else "none measured")
        )
    for peer in not_measured(report):
        click.echo(f"  not measured: {peer.name} ({peer.absent_because})")


def _print_demo_digests(results: Sequence[DigestResult], recipients: Path | None) -> None:
    """Where the demo's digests were written: the Board's file, the agencies' folder."""
    for result in results:
        if not result.eml_files:
            continue
        if result.kind == "board":
            click.echo(f"Board digest:  {result.eml_files[0]} (a dry run: not sent)")
        else:
            folder = result.eml_files[0].parent
            click.echo(f"Agencies':     {folder} ({len(result.eml_files)} .eml files, one each)")
    click.echo(f"Recipients:    {recipients}")


@main.command("import")
@click.option("--portal", "portal_name", required=True, help="The portal the file is a catalog of.")
@click.option("--date", "night", required=True, help="The night it was saved (YYYY-MM-DD).")
@click.argument("archive", type=click.Path(path_type=Path))
@log_level_option
@click.option(
    "--accept-shrink",
    is_flag=True,
    help="Replace an imported night even with far fewer assets or in-scope datasets than the "
    "stored snapshot of the night or the last good one before it.",
)
def import_archive_command(
    portal_name: str, night: str, archive: Path, log_level: str, accept_shrink: bool
) -> None:
    """Add a real past snapshot from an archived catalog file: a saved Discovery API response
    (Socrata portals) or a saved data.json (DCAT portals). Then compute that night's metrics
    and board tables, and the next stored night's (its changes are counted against this one)."""
    settings = Settings.from_env()
    defs, portal_file, source = served_portals(settings, "import")
    refuse_unknown_portals("import", [portal_name], portal_file, source)
    portal = portal_file.get(portal_name)
    try:
        snapshot_date = date.fromisoformat(night)
    except ValueError:
        _fail(f"ctdata import: --date {night!r} is not a date (YYYY-MM-DD)", code=2)
    try:
        check_importable_night(snapshot_date, portal_file.first_night, settings.portals_file)
        with database(settings.db_path) as conn:
            written = import_archive(
                conn,
                portal,
                snapshot_date,
                archive,
                first_night=portal_file.first_night,
                portal_file_path=settings.portals_file,
                min_ratio=portal_file.guard_ratio(portal),
                accept_shrink=accept_shrink,
            )
            following = scalar(
                conn,
                "SELECT min(snapshot_date) FROM catalog.snapshots "
                "WHERE portal = ? AND snapshot_date > ?",
                [portal.name, snapshot_date],
            )
    except ImportRefused as refusal:
        _fail(f"ctdata import: {refusal}", code=1)
    ensure_dagster_home()
    nights = [snapshot_date] + ([following] if following else [])
    imported = {
        "dagster/row_count": written.assets_total,
        "origin": "import",
        "archive": archive.name,
    }
    with recording_instance() as instance:
        # The archive is that night's catalog as the portal published it: it fills the night's
        # harvest partition, which no run can (a live portal answers only for tonight), so the
        # UI does not count an imported night as harvest work still to do.
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=HARVEST_ASSET,
                partition=night_key(snapshot_date, portal.name),
                description=f"Not harvested: taken from the archived catalog {archive.name}",
                metadata=imported,
            )
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=CATALOG_ASSET,
                partition=night_key(snapshot_date, portal.name),
                description=f"Imported from {archive.name}",
                metadata={
                    **imported,
                    "datasets_in_scope": written.datasets_in_scope,
                    "shrink_guard": written.shrink_guard,
                },
            )
        )
        results = run_nights(
            defs, [(n, portal.name) for n in nights], instance, log_level, RECOMPUTE_JOB
        )
    click.echo(
        f"{portal.name} {snapshot_date}: imported {written.assets_total} assets "
        f"({written.datasets_in_scope} in scope) from {archive}"
    )
    if written.rekeyed:
        click.echo(f"{portal.name} {snapshot_date}: {written.rekeyed}")
    for result in results:
        click.echo(
            f"{result.snapshot_date} {result.portal}: metrics and board tables {result.status}"
        )
    if any(not result.success for result in results):
        _fail("ctdata import: the snapshot was stored but its metrics failed (see above)", 1)


@main.command()
@click.option("--from", "first", required=True, help="First night (YYYY-MM-DD).")
@click.option("--to", "last", help="Last night (YYYY-MM-DD); default: the first.")
@click.option("--portal", "portals", multiple=True, help="Only this portal (repeatable).")
@log_level_option
def recompute(first: str, last: str | None, portals: tuple[str, ...], log_level: str) -> None:
    """Recompute stored nights: their metrics, board tables and reports, from the snapshots
    already stored (a backfill; nothing is harvested). Each night is a recorded run."""
    settings = Settings.from_env()
    try:
        start = date.fromisoformat(first)
        end = date.fromisoformat(last) if last else start
    except ValueError as error:
        _fail(f"ctdata recompute: {error}", code=2)
    defs, portal_file, source = served_portals(settings, "recompute")
    names = list(portals) or portal_file.names
    refuse_unknown_portals("recompute", names, portal_file, source)
    if not settings.warehouse().exists():
        _fail(f"ctdata recompute: no database at {_nothing_yet(settings)}", 1)
    with database(settings.db_path, read_only=True) as conn:
        stored = conn.execute(
            "SELECT snapshot_date, portal FROM catalog.snapshots WHERE snapshot_date "
            "BETWEEN ? AND ? AND portal IN (SELECT unnest(?)) ORDER BY snapshot_date, portal",
            [start, end, names],
        ).fetchall()
    if not stored:
        _fail(
            f"ctdata recompute: no stored snapshot of {', '.join(names)} from {start} to {end}", 1
        )
    oldest = stored[0][0]
    if oldest < portal_file.first_night:
        # A night stored before first_night was moved later is kept, but is no partition.
        _fail(
            f"ctdata recompute: {oldest} is stored but before the first night "
            f"({portal_file.first_night}); to recompute it, set first_night: {oldest} (or "
            f"earlier) in {settings.portals_file}, or start --from at the first night",
            2,
        )
    ensure_dagster_home()
    with recording_instance() as instance:
        nights = sorted({night for night, _ in stored})
        results = run_nights(defs, stored, instance, log_level, RECOMPUTE_JOB, reports=nights)
    for result in results:
        click.echo(f"{result.snapshot_date} {result.portal}: {result.status}")
    _fail_on_failures("recompute", results)


@main.command()
@click.option("--board", "board_only", is_flag=True, help="Only the Board's digest.")
@click.option("--agencies", "agencies_only", is_flag=True, help="Only the agencies' digests.")
@click.option(
    "--for",
    "day",
    metavar="YYYY-MM-DD",
    help="A day of the period to send; default: the last stored night's period.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the digests as .eml files to the outbox (CTDATA_OUTBOX_DIR): nothing is sent "
    "or recorded.",
)
@log_level_option
def digests(
    board_only: bool, agencies_only: bool, day: str | None, dry_run: bool, log_level: str
) -> None:
    """Send the digests of a period now (the Board's and the agencies', as their Monday
    schedules do), each address once: a digest already sent to an address is not sent again.
    Recipients from CTDATA_RECIPIENTS, the SMTP server from CTDATA_SMTP_HOST and the rest."""
    settings = Settings.from_env()
    kinds: list[DigestKind] = [
        kind
        for kind, only in (("board", board_only), ("agency", agencies_only))
        if only or not (board_only or agencies_only)
    ]
    _refuse_undeliverable(settings, dry_run)
    if day is None:
        on = _last_stored_night(settings)
    else:
        try:
            on = date.fromisoformat(day)
        except ValueError as error:
            _fail(f"ctdata digests: --for {day!r}: {error}", code=2)
    defs, _, _ = served_portals(settings, "digests")
    ensure_dagster_home()
    with recording_instance() as instance:
        results = run_digests(defs, settings, kinds, on, instance, log_level, dry_run)
    _print_digest_results(results)


def _refuse_undeliverable(settings: Settings, dry_run: bool) -> None:
    """Exit 2 before any run when the digests could not go: no or a bad recipients file, or
    no SMTP server for a real send (each run would fail saying so; this says it once)."""
    if settings.recipients_file is None:
        _fail(
            "ctdata digests: CTDATA_RECIPIENTS is not set: no recipients file says who receives "
            "the digests (README: Recipients and SMTP)",
            code=2,
        )
    try:
        load_recipients(settings.recipients_file)
    except RecipientsError as error:
        _fail(f"ctdata digests: CTDATA_RECIPIENTS: {error}", code=2)
    if not dry_run and SmtpSettings.from_env() is None:
        _fail(
            "ctdata digests: no SMTP server to send through: set CTDATA_SMTP_HOST (and "
            "CTDATA_MAIL_FROM), or add --dry-run to write the digests to the outbox",
            code=2,
        )


def _last_stored_night(settings: Settings) -> date:
    if not settings.warehouse().exists():
        _fail(f"ctdata digests: no database at {_nothing_yet(settings)}", 1)
    with database(settings.db_path, read_only=True) as conn:
        night = scalar(conn, "SELECT max(snapshot_date) FROM catalog.snapshots")
    if night is None:
        _fail(f"ctdata digests: no night stored in {settings.db_path} yet", 1)
    return night


def _print_digest_results(results: Sequence[DigestResult]) -> None:
    for result in results:
        click.echo(f"{result.label}: {'ok' if result.success else 'FAILED'}")
        for path in result.eml_files:
            click.echo(f"  {path}")
    failed = [result for result in results if not result.success]
    for result in failed:
        # The run's failure lists every digest that did not go, one per line.
        click.echo(f"ctdata digests: {result.label}: {result.reason}", err=True)
    if failed:
        sys.exit(1)


@main.command()
def check() -> None:
    """Verify the DuckDB file (CTDATA_DB), read-only: every snapshot whole, every metric there
    and possible, the board tables adding up to their metrics, no rows without a snapshot.
    Exit 0 when all holds, 1 listing what does not, 2 when there is no database."""
    settings = Settings.from_env()
    _refuse_lake(settings, "check", "check it with the report's checks in the Dagster UI")
    if not settings.db_path.exists():
        _fail(f"ctdata check: no database at {settings.db_path} (CTDATA_DB)", 2)
    try:
        with failing_clearly("read the database", settings.db_path, writing=False):
            found = verify_file(settings.db_path, settings.lock_wait_seconds)
    except WarehouseDamaged as damage:
        _fail(f"ctdata check: FAIL {damage}; {_restore_hint(settings)}", 1)
    except WarehouseLocked as locked:
        failure = settings.warehouse().locked_failure(locked, read_only=True)
        _fail(f"ctdata check: {failure.description}", 1)
    nights = f"{found.first_night} to {found.last_night}" if found.snapshots else "none"
    click.echo(
        f"{settings.db_path}: {found.snapshots} snapshots of {len(found.portals)} portal(s) "
        f"({', '.join(found.portals) or 'none'}); nights {nights}"
    )
    for result in found.results:
        click.echo(f"  {'ok  ' if result.passed else 'FAIL'}  {result.title}")
        for snapshot_date, portal, problem in result.problems[:MAX_DETAILS]:
            click.echo(f"          {snapshot_date} {portal}: {problem}")
        if len(result.problems) > MAX_DETAILS:
            click.echo(f"          … and {len(result.problems) - MAX_DETAILS} more")
    if found.problems:
        _fail(f"ctdata check: {found.problems} problem(s) found in {settings.db_path}", 1)
    click.echo("ctdata check: no problems found")


# A DuckLake's tables are its catalog database's rows and its data folder's files.
LAKE_BACKUP = "back up and restore its catalog database (pg_dump) and its data folder together"


def _refuse_lake(settings: Settings, command: str, instead: str) -> None:
    """Commands that work on the DuckDB file only, refused (exit 2) on a DuckLake."""
    if settings.lake:
        _fail(
            f"ctdata {command}: works on the DuckDB file (CTDATA_DB) only, and the warehouse "
            f"is {settings.warehouse().location} (CTDATA_WAREHOUSE): {instead}",
            2,
        )


def _nothing_yet(settings: Settings) -> str:
    """Where a warehouse nothing was written to yet was looked for, and the setting that says."""
    if settings.lake:
        return f"{settings.warehouse().location} yet (CTDATA_WAREHOUSE)"
    return f"{settings.db_path} yet (CTDATA_DB)"


def _restore_hint(settings: Settings) -> str:
    newest = newest_backup(settings.backups, settings.db_path)
    if newest is None:
        return f"no backup to restore in {settings.backups} (CTDATA_BACKUP_DIR)"
    return f"to put the newest backup back: ctdata restore {newest.path}"


@main.command()
def backup() -> None:
    """Back the warehouse (CTDATA_DB) up now into CTDATA_BACKUP_DIR: a checkpointed copy of the
    file, checked like `ctdata check`, named by the time it was taken; then apply the retention
    rule (CTDATA_BACKUP_KEEP)."""
    settings = Settings.from_env()
    _refuse_lake(settings, "backup", LAKE_BACKUP)
    try:
        policy = KeepPolicy.parse(settings.backup_keep)
        with failing_clearly("write the backup in", settings.backups, writing=False):
            taken = take_backup(settings.db_path, settings.backups, policy)
    except (RetentionError, BackupRefused) as refusal:
        _fail(f"ctdata backup: {refusal}", 1)
    manifest = taken.manifest
    click.echo(
        f"ctdata backup: {taken.backup.path} ({manifest.bytes:,} bytes, "
        f"{manifest.snapshots} snapshots, nights to {manifest.last_night or 'none'}) "
        f"in {manifest.seconds:.2f}s"
    )
    deleted = ", ".join(b.path.name for b in taken.deleted) or "none"
    click.echo(f"retention {policy.describe()}: {len(taken.kept)} kept, deleted: {deleted}")


@main.command()
@click.argument("backup_file", metavar="BACKUP", type=click.Path(path_type=Path))
def restore(backup_file: Path) -> None:
    """Put a backup in place of the warehouse (CTDATA_DB): check it first, read-only, as
    `ctdata check` does (a damaged backup, or one from a newer schema, is refused and nothing
    changes), keep the current file aside beside it, then swap the backup in atomically."""
    settings = Settings.from_env()
    _refuse_lake(settings, "restore", LAKE_BACKUP)
    try:
        with failing_clearly("restore into", settings.db_path):
            restored = restore_backup(backup_file, settings.db_path)
    except RestoreRefused as refusal:
        _fail(f"ctdata restore: refused, {refusal}; {settings.db_path} is unchanged", 1)
    found = restored.found
    nights = f"{found.first_night} to {found.last_night}" if found.snapshots else "none"
    click.echo(
        f"ctdata restore: {settings.db_path} now holds {backup_file}: {found.snapshots} "
        f"snapshots of {', '.join(found.portals) or 'no portal'}, nights {nights}"
    )
    if restored.aside:
        click.echo(f"the file it replaced is kept at {restored.aside}")


def _print_demo_snapshots(db_path: Path, portals: list[str], nights: list[date]) -> None:
    with database(db_path, read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT snapshot_date, portal, assets_total, datasets_in_scope
            FROM catalog.snapshots
            WHERE portal IN (SELECT unnest(?)) AND snapshot_date BETWEEN ? AND ?
            ORDER BY snapshot_date, portal
            """,
            [portals, nights[0], nights[-1]],
        ).fetchall()
    by_night: dict[date, dict[str, tuple[int, int]]] = {}
    for snapshot_date, portal, total, in_scope in rows:
        by_night.setdefault(snapshot_date, {})[portal] = (total, in_scope)
    header = "night       " + "".join(f"{name:>28}" for name in portals)
    click.echo(header)
    for night in nights:
        cells = []
        for name in portals:
            total, in_scope = by_night.get(night, {}).get(name, (None, None))
            cells.append(
                f"{'-':>28}" if total is None else f"{f'{total} assets, {in_scope} in scope':>28}"
            )
        click.echo(f"{night}  " + "".join(cells))


HEADLINES = (
    ("MD-1", "pct_missing_metadata", "missing metadata"),
    ("MD-2", "pct_meets_ct_standard", "meets CT's standard"),
    ("FR-2", "pct_stale", "stale"),
    ("FR-3", "pct_freshness_unknown", "freshness unknown"),
)
# The probe headlines (metrics v2), printed for a portal only once its probes have measured them.
PROBED_HEADLINES = (
    ("FR-5", "pct_silently_stale", "silently stale"),
    ("AC-1", "pct_datasets_with_broken_link", "broken link"),
)


def _print_headlines(
    db_path: Path,
    portals: list[str],
    first: date,
    last: date,
    targets: Mapping[str, Target] | None = None,
) -> None:
    """The plan's headline percentages, first night against last; a headline with a target
    is judged against it, and its last night's move said to be the right way or not (in
    metrics/targets.py's words, the report's)."""
    targets = targets or {}
    with database(db_path, read_only=True) as conn:
        values = {
            (portal, metric, night): value
            for portal, metric, night, value in conn.execute(
                """
                SELECT portal, metric, snapshot_date, value FROM board.plan_metrics
                WHERE agency IS NULL AND snapshot_date BETWEEN ? AND ?
                  AND portal IN (SELECT unnest(?)) AND metric IN (SELECT unnest(?))
                """,
                [
                    first,
                    last,
                    portals,
                    [metric for _, metric, _ in HEADLINES + PROBED_HEADLINES],
                ],
            ).fetchall()
        }
    click.echo(f"\nheadline (% of in-scope datasets)   {first} -> {last}")
    for portal in portals:
        nights = sorted({night for (name, _, night) in values if name == portal and night < last})
        previous = nights[-1] if nights else None
        # A probe headline is printed once measured (FR-5 never is on a DCAT feed).
        probed = [
            headline
            for headline in PROBED_HEADLINES
            if any(
                name == portal and m == headline[1] and value is not None
                for (name, m, _), value in values.items()
            )
        ]
        for metric_id, metric, label in HEADLINES + tuple(probed):
            # A probe figure's first value is its first probed night's, not the story's first.
            since = first
            if (metric_id, metric, label) in PROBED_HEADLINES:
                since = min(
                    n
                    for (name, m, n), value in values.items()
                    if name == portal and m == metric and value is not None
                )
            before, after = values.get((portal, metric, since)), values.get((portal, metric, last))
            click.echo(
                f"  {portal:<22} {metric_id:<5} {label:<20} {_percent(before):>7} -> "
                f"{_percent(after):>7}" + (f"  (first probed {since})" if since != first else "")
            )
            if target := targets.get(metric_id):
                moved = movement(
                    metric_id,
                    after,
                    values.get((portal, metric, previous)),
                    previous,
                    "percent",
                    target,
                )
                click.echo(f"{'':<31}{judge(target, after, 'percent').words}")
                if moved:
                    click.echo(f"{'':<31}{moved}")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _fail_on_failures(command: str, results: Sequence[NightResult], dated: bool = True) -> None:
    """Exit 1 with a line on stderr for each failed run, naming it and why, if any failed."""
    failed = [result for result in results if not result.success]
    for result in failed[:-1]:
        click.echo(f"ctdata {command}: {result.failure(dated)}", err=True)
    if failed:
        _fail(f"ctdata {command}: {failed[-1].failure(dated)}", code=1)


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)
