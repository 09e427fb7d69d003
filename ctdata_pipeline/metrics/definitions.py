"""Plan metrics, versions 1 and 2 (shared/spec/metrics.md), as data: what each metric means, how its
numerator and denominator are counted, and the constants its SQL uses. The report's "how each
number is computed" section and the metric assets' descriptions are generated from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METRIC_VERSION = 1
# Version 2: the probe metrics and the metrics the spec's clarifications touch (metrics.md,
# "Clarifications of version 1": MD-3 valid_rate, FR-0's two periods, dataset identity).
METRIC_VERSION_2 = 2


# MD-6: descriptions that say nothing.
PLACEHOLDER_DESCRIPTIONS = ("test", "tbd", "n/a", "none", "description")
SUBSTANTIVE_DESCRIPTION_CHARS = 100

# MD-8: open licences (public domain, CC0, PDDL, CC BY, CC BY-SA, ODC-By, ODbL, OGL), matched
# case-insensitively in the licence's name or URL; a NonCommercial or NoDerivatives variant is
# not open.
OPEN_LICENSE_PATTERN = (
    r"public ?domain|publicdomain|\bcc0\b|cc-zero|\bpddl\b|"
    r"creativecommons\.org/licenses/by(-sa)?/|\bcc[- ]by(-sa)?\b|creative commons attribution|"
    r"\bodc-by\b|opendatacommons\.org/licenses/(by|odbl|pddl)|\bodbl\b|open database licen|"
    r"open government licen|\bogl\b"
)
NOT_OPEN_LICENSE_PATTERN = r"non-?commercial|no-?deriv|\bby-nc|\bby-nd|\bnc\b|\bnd\b"

# MD-3 valid_rate:<field>: the standard fields that have a form (DCAT-US names; Socrata's
# contact_email and license are the same two forms).
VALID_RATE_FIELDS = (
    "contactPoint.hasEmail",  # a mailto: address
    "modified",  # an ISO 8601 date or date-time
    "accessLevel",  # public, restricted public or non-public
    "license",  # a URL or a known licence name
    "contact_email",  # an e-mail address (mailto: or bare)
)
# A licence named by its name: the families a catalog names (Creative Commons, the Open Data
# Commons, the open government licences, public domain, the common software licences). Matched
# on a value of at most KNOWN_LICENSE_MAX_CHARS characters: a name, not a paragraph of terms
# that happens to mention one (Hub feeds put their disclaimers there).
KNOWN_LICENSE_PATTERN = (
    r"creative ?commons|\bcc[- ]?(0|zero|by)\b|\bcc[- ]by|public ?domain|\bpddl\b|\bodbl\b|"
    r"\bodc[- ]by\b|open data ?commons|open database licen|open government licen|\bogl\b|"
    r"\bmit licen|apache licen|\bgnu\b|\bgpl\b|\bbsd\b|etalab|licence ouverte|"
    r"data licen[cs]e germany|\bdl-de\b|norwegian licen|\bnlod\b"
)
KNOWN_LICENSE_MAX_CHARS = 100

# MD-4: EU MQA's band boundaries, as shares of 100.
SCORE_BANDS = (("excellent", 86.7), ("good", 54.6), ("sufficient", 29.9), ("bad", 0.0))

# MD-3: the standard fields whose fill rate is reported, by portal kind. Socrata custom fields
# are reported only when the portal file maps them.
SOCRATA_FILL_FIELDS = (
    "title",
    "description",
    "category",
    "agency",
    "tags",
    "update_frequency",
    "license",
)
SOCRATA_CUSTOM_FILL_FIELDS = (
    "geographic_unit",
    "temporal_coverage",
    "row_label",
    "contact_email",
    "source_link",
)
DCAT_FILL_FIELDS = (
    "title",
    "description",
    "keyword",
    "modified",
    "publisher.name",
    "contactPoint.fn",
    "contactPoint.hasEmail",
    "identifier",
    "accessLevel",
    "license",
    "accrualPeriodicity",
    "spatial",
    "temporal",
)

FR6_MIN_NIGHTS = 30  # fewer nights of history: "insufficient history", never a guess
FR6_WINDOW_DAYS = 365
# GV-1: automation inferred from the portal's own snapshots of the last 180 days.
GV1_WINDOW_DAYS = 180
GV1_MAX_PERIOD_DAYS = 90
GV1_MIN_CHANGES = 6
GV1_MAX_CV = 0.3

# AC-2: the format codes of metrics/sql/practice_formats.sql that are machine-readable, and
# those of them that are open (XLS and XLSX are not).
OPEN_MACHINE_READABLE_FORMATS = (
    "csv", "tsv", "json", "geojson", "xml", "rdf", "kml", "kmz", "gpx", "geopackage",
    "shapefile", "parquet", "arcgis_rest", "ogc_service", "api",
)  # fmt: skip
MACHINE_READABLE_FORMATS = (*OPEN_MACHINE_READABLE_FORMATS, "xls", "xlsx")
NO_AGENCY = "(no agency)"  # per-agency rows need a name; NULL means the whole portal


@dataclass(frozen=True)
class Metric:
    """One metric of metrics.md."""

    metric_id: str
    names: tuple[str, ...]  # `metric` values; a trailing ':' is a family (fill_rate:<field>)
    title: str
    family: str  # inventory, metadata, freshness, usage, governance
    definition: str
    numerator: str
    denominator: str
    headline: bool = False
    version: int = METRIC_VERSION
    # Which way is progress: the report says whether a night moved the right way.
    better: Literal["lower", "higher"] | None = None


METRICS: tuple[Metric, ...] = (
    Metric(
        "INV-1",
        ("assets_total", "datasets_in_scope", "assets_total:"),
        "Assets in the catalog",
        "inventory",
        "Every harvested asset (datasets, views, charts, maps, stories, files, links, federated "
        "and community assets), the in-scope datasets among them, and the assets of each type.",
        "assets counted",
        "none (a count)",
        headline=True,
    ),
    Metric(
        "INV-2",
        ("datasets_added", "datasets_removed", "datasets_renamed", "datasets_rekeyed"),
        "Datasets added, removed and renamed",
        "inventory",
        "In-scope datasets present tonight and not in the portal's previous snapshot (added), "
        "the reverse (removed), and datasets in both whose title changed (renamed). A dataset "
        "whose identifier changed form (matched by its ArcGIS REST layer URL, its Hub item id, "
        "or its title and publisher) is rekeyed, neither added nor removed. Empty on a "
        "portal's first snapshot.",
        "datasets changed",
        "none (a count)",
        headline=True,
        version=METRIC_VERSION_2,
    ),
    Metric(
        "MD-1",
        ("pct_missing_metadata",),
        "Datasets missing metadata",
        "metadata",
        "The State Data Plan's headline (94% to under 20%). Socrata: an in-scope dataset with "
        "an empty description, update frequency or tags, CT's own Site Analytics test. DCAT: "
        "any DCAT-US required field empty or invalid (title, description, keyword, modified, "
        "publisher.name, contactPoint.fn, contactPoint.hasEmail as a mailto: address, "
        "identifier, accessLevel). Empty means blank after stripping HTML, or an unresolved "
        "{{template}}.",
        "in-scope datasets missing any of those fields",
        "in-scope datasets",
        headline=True,
        better="lower",
    ),
    Metric(
        "MD-2",
        ("pct_meets_ct_standard",),
        "Datasets meeting CT's metadata standard",
        "metadata",
        "Socrata: title, description, a category among CT's ten, an agency named by the "
        "dataset (the agency field, or the attribution on a portal without one; an owner "
        "account does not count), at least one tag, an update frequency that maps to a known "
        "schedule, and a licence. DCAT: MD-1's fields plus a licence.",
        "in-scope datasets meeting every requirement",
        "in-scope datasets",
        headline=True,
        better="higher",
    ),
    Metric(
        "MD-3",
        ("fill_rate:", "valid_rate:"),
        "Fill rate of each standard field",
        "metadata",
        "For each standard field, the share of in-scope datasets where it is not empty "
        "(fill_rate), whatever its form; for the fields with a form, the share whose value is "
        "also well-formed (valid_rate): contactPoint.hasEmail a mailto: address, modified an "
        "ISO 8601 date, accessLevel public, restricted public or non-public, license a URL or a "
        "known name.",
        "in-scope datasets with the field filled (well-formed)",
        "in-scope datasets",
        better="higher",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "MD-4",
        ("mean_metadata_score", "pct_band:"),
        "Metadata quality score",
        "metadata",
        "A 0-100 score per dataset: findability 35 (tags 10, category 10, temporal coverage 5, "
        "geographic unit 5, title quality 5: at least 10 characters and two words, not all "
        "capitals, no underscores, no file extension), reusability 30 (licence present 10, "
        "licence open 5, agency 5, contact e-mail 5, data dictionary covering at least 80% of "
        "columns 5; DCAT: a describedBy link), context 25 (substantive description 10, update "
        "frequency known 10, row label 5) and interoperability 10 (valid DCAT-US 1.1; Socrata "
        "datasets earn it for their open API). Bands as EU MQA: excellent at least 86.7, good "
        "54.6, sufficient 29.9, else bad.",
        "sum of scores (mean) / datasets in the band",
        "in-scope datasets",
        better="higher",
    ),
    Metric(
        "MD-5",
        ("pct_full_data_dictionary", "column_doc_coverage"),
        "Data dictionaries",
        "metadata",
        "A column is described when its description is not empty and not just its name; "
        "system columns (field names starting with ':') are left out. Full data dictionary: a "
        "dataset with at least one column, all described. Coverage: described columns over all "
        "columns. DCAT feeds publish no columns, so both are empty there.",
        "datasets with every column described / described columns",
        "in-scope datasets with column information / columns",
        better="higher",
    ),
    Metric(
        "MD-6",
        ("pct_description_substantive",),
        "Substantive descriptions",
        "metadata",
        "A description of at least 100 characters after stripping HTML, not the title again, "
        "and not a placeholder (test, tbd, n/a, none, description).",
        "in-scope datasets with a substantive description",
        "in-scope datasets",
        better="higher",
    ),
    Metric(
        "MD-8",
        ("pct_license_present", "pct_license_open"),
        "Licences",
        "metadata",
        "A licence is present when not empty; open when it is public domain, CC0, PDDL, CC BY, "
        "CC BY-SA, ODC-By, ODbL or OGL (not a NonCommercial or NoDerivatives variant).",
        "in-scope datasets with a (open) licence",
        "in-scope datasets",
        better="higher",
    ),
    Metric(
        "FR-1",
        ("freshness_state:", "freshness_state_by_data_date:"),
        "Freshness state of each dataset",
        "freshness",
        "Age = snapshot time minus the last data update (Socrata data_updated_at, never "
        "updatedAt; else publication date, else creation date; DCAT modified). By the declared "
        "update frequency (FR-0, HDX's tiers): FRESH up to f days, DUE after f, OVERDUE and "
        "DELINQUENT after the later tiers; NOT_SCHEDULED (as needed), STATIC (historical), "
        "UNKNOWN (no known frequency, no timestamp, or a timestamp more than a day in the "
        "future).",
        "in-scope datasets in the state",
        "none (a count)",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-2",
        ("pct_stale", "pct_stale_by_data_date"),
        "Stale datasets",
        "freshness",
        "OVERDUE and DELINQUENT datasets among those with a schedule and a known age. Read it "
        "beside FR-3: deleting a dataset's update frequency must not make a portal look fresher.",
        "OVERDUE + DELINQUENT",
        "FRESH + DUE + OVERDUE + DELINQUENT",
        headline=True,
        better="lower",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-2s",
        ("pct_stale_strict",),
        "Stale datasets, no grace",
        "freshness",
        "As FR-2, counting DUE datasets as stale too.",
        "DUE + OVERDUE + DELINQUENT",
        "FRESH + DUE + OVERDUE + DELINQUENT",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-3",
        ("pct_freshness_unknown",),
        "Freshness unknown",
        "freshness",
        "In-scope datasets whose freshness cannot be judged (state UNKNOWN).",
        "UNKNOWN datasets",
        "in-scope datasets",
        headline=True,
        better="lower",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-4",
        ("median_days_overdue", "p90_days_overdue"),
        "How late stale datasets are",
        "freshness",
        "Over OVERDUE and DELINQUENT datasets: age minus the frequency's period f, in days; the "
        "median and the 90th percentile (interpolated).",
        "days",
        "stale datasets (n)",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-5",
        ("pct_silently_stale", "content_date_coverage"),
        "Silently stale datasets",
        "freshness",
        "Socrata datasets with a date column: the content date is the latest SoQL max() of "
        "those columns not after the snapshot time + 1 day. Silently stale: FR-1 says FRESH or "
        "DUE (the metadata says current) but the content is older than 3 times the declared "
        "period f. Coverage: datasets with a content date among those with a date column.",
        "silently stale datasets / datasets with a content date",
        "FRESH or DUE datasets with a content date / datasets with a date column",
        headline=True,
        version=METRIC_VERSION_2,
        better="lower",
    ),
    Metric(
        "FR-8",
        (
            "median_data_age_days",
            "pct_data_older_than_1y",
            "pct_data_older_than_3y",
            "layer_date_coverage",
            "pct_modified_after_data_edit",
        ),
        "Age of the data in map layers",
        "freshness",
        "DCAT datasets with an ArcGIS REST layer (FeatureServer/MapServer) among their "
        "distributions: the layer's dataLastEditDate, else lastEditDate, is the data date; "
        "else the dataset's modified. Age metrics are over datasets with a data date; layer "
        "date coverage over datasets with a layer URL; modified after data edit: modified more "
        "than 1 day after the layer date, over datasets with a layer date (how often Hub's "
        "modified is a metadata date). FR-1 and FR-2 by data date use the layer date.",
        "datasets (days, for the median)",
        "datasets with a data date / a layer URL / a layer date",
        version=METRIC_VERSION_2,
        better="lower",
    ),
    Metric(
        "FR-6",
        ("cadence_mismatch:",),
        "Declared and observed update cadence",
        "freshness",
        "From the portal's own snapshots of the last 365 days (at least 30 nights, else "
        "'insufficient history'): the median interval between changes of the data-update time. "
        "under_delivering: observed interval above twice the declared period; "
        "misdeclared_static: declared historical, yet its data changed.",
        "datasets flagged",
        "none (a count)",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "FR-7",
        ("pct_metadata_reviewed_12m",),
        "Metadata reviewed in the last year",
        "freshness",
        "Metadata updated within 365 days of the snapshot (DCAT: modified).",
        "in-scope datasets with metadata updated in 365 days",
        "in-scope datasets",
    ),
    Metric(
        "FR-9",
        ("stale_but_popular",),
        "Stale but popular",
        "freshness",
        "OVERDUE or DELINQUENT datasets in the portal's top quartile of last-month views "
        "(and viewed at least once): where staleness costs most. Ranked in the report.",
        "datasets",
        "none (a count)",
        version=METRIC_VERSION_2,
    ),
    Metric(
        "US-1",
        ("views_last_month", "views_total", "downloads_total"),
        "Use",
        "usage",
        "Sums over in-scope datasets of the views in the last month, all-time views and "
        "downloads. DCAT feeds publish none.",
        "views or downloads",
        "none (a sum)",
    ),
    Metric(
        "US-2",
        ("pct_unused",),
        "Unused datasets",
        "usage",
        "In-scope datasets with no views in the last month.",
        "datasets with 0 views last month",
        "in-scope datasets with view counts",
        better="lower",
    ),
    Metric(
        "AC-1",
        ("pct_datasets_with_broken_link", "pct_links_ok", "links_not_checked"),
        "Broken links",
        "access",
        "Every DCAT distribution's downloadURL and accessURL, a landingPage off the portal's "
        "host, Socrata link assets' target and attribution links: HEAD (GET of at most 64 KB "
        "when HEAD answers 403, 405 or 501), at most 5 redirects, 20 s. OK: the final answer is "
        "2xx or 3xx. Broken: not OK on two consecutive probes at least 20 hours apart. URLs "
        "without a recent result are not checked, never counted good or bad.",
        "datasets with a broken URL / OK URLs / URLs not checked",
        "datasets with a checked URL / URLs with a result / none (a count)",
        headline=True,
        version=METRIC_VERSION_2,
        better="lower",
    ),
    Metric(
        "AC-2",
        ("pct_machine_readable",),
        "Machine-readable data",
        "access",
        "In-scope datasets with a distribution in an open machine-readable format (by "
        "mediaType, else format, else the URL's extension: CSV, TSV, JSON, GeoJSON, XML, RDF, "
        "KML, KMZ, GPX, GeoPackage, zipped Shapefile, Parquet, an ArcGIS REST or OGC service, "
        "an API; XLS and XLSX count as machine-readable, not open). Socrata tabular datasets "
        "count (their CSV and JSON API).",
        "datasets with a machine-readable distribution",
        "in-scope datasets",
        version=METRIC_VERSION_2,
        better="higher",
    ),
    Metric(
        "GV-1",
        ("automation_share_inferred",),
        "Automated updates (inferred)",
        "governance",
        "Scheduled datasets with a period of at most 90 days and at least 180 days of the "
        "portal's own snapshots: automated (inferred) when the data-update time changed at "
        "least 6 times in the last 180 days and the intervals between changes vary little "
        "(coefficient of variation under 0.3). Inferred from history, never declared.",
        "datasets inferred automated",
        "scheduled datasets with f <= 90 days and 180 days of history",
        version=METRIC_VERSION_2,
        better="higher",
    ),
    Metric(
        "GV-2",
        ("duplicate_title_groups",),
        "Possible duplicates",
        "governance",
        "Groups of two or more in-scope datasets whose titles are equal after lower-casing and "
        "removing punctuation, years and the word 'archive'. Per agency: groups within the "
        "agency's own datasets.",
        "groups",
        "none (a count)",
    ),
)


# Plain names of every `metric` value, for readers (the report's method tables). A family
# (fill_rate:<field>) is named from its member; `metric_label` puts the two together.
LABELS = {
    "assets_total": "Assets of every type",
    "datasets_in_scope": "Datasets in scope",
    "datasets_added": "Datasets added",
    "datasets_removed": "Datasets removed",
    "datasets_renamed": "Datasets renamed",
    "datasets_rekeyed": "Datasets rekeyed (a new id, the same dataset)",
    "pct_missing_metadata": "Datasets missing metadata",
    "pct_meets_ct_standard": "Datasets meeting CT's metadata standard",
    "mean_metadata_score": "Mean metadata score",
    "pct_full_data_dictionary": "Datasets with a full data dictionary",
    "column_doc_coverage": "Columns documented",
    "pct_description_substantive": "Datasets with a substantive description",
    "pct_license_present": "Datasets with a licence",
    "pct_license_open": "Datasets with an open licence",
    "pct_stale": "Stale datasets",
    "pct_stale_strict": "Stale datasets, counting those due",
    "pct_freshness_unknown": "Datasets of unknown freshness",
    "median_days_overdue": "Days overdue, median",
    "p90_days_overdue": "Days overdue, 90th percentile",
    "pct_metadata_reviewed_12m": "Datasets with metadata reviewed in the last year",
    "stale_but_popular": "Stale but popular datasets",
    "views_last_month": "Views last month",
    "views_total": "Views, all time",
    "downloads_total": "Downloads, all time",
    "pct_unused": "Unused datasets",
    "duplicate_title_groups": "Groups of possible duplicates",
    "pct_stale_by_data_date": "Stale datasets, by the data's own date",
    "pct_silently_stale": "Silently stale datasets",
    "content_date_coverage": "Datasets with a content date",
    "median_data_age_days": "Age of the data, median days",
    "pct_data_older_than_1y": "Datasets whose data is over a year old",
    "pct_data_older_than_3y": "Datasets whose data is over three years old",
    "layer_date_coverage": "Map datasets with a layer edit date",
    "pct_modified_after_data_edit": "Datasets modified after their data last changed",
    "pct_links_ok": "Links that answer",
    "pct_datasets_with_broken_link": "Datasets with a broken link",
    "links_not_checked": "Links not checked",
    "pct_machine_readable": "Datasets in a machine-readable format",
    "automation_share_inferred": "Datasets updated automatically (inferred)",
}
FAMILY_LABELS = {
    "assets_total:": "Assets of type {member}",
    "fill_rate:": "Fill rate: {member}",
    "valid_rate:": "Well-formed: {member}",
    "pct_band:": "Datasets in the {member} score band",
    "freshness_state:": "Datasets {member}",
    "freshness_state_by_data_date:": "Datasets {member}, by the data's own date",
    "cadence_mismatch:": "Datasets {member}",
}
MEMBER_WORDS = {
    # freshness states (FR-1)
    "FRESH": "fresh",
    "DUE": "due",
    "OVERDUE": "overdue",
    "DELINQUENT": "delinquent",
    "NOT_SCHEDULED": "not scheduled (as needed)",
    "STATIC": "static (historical)",
    "UNKNOWN": "of unknown freshness",
    # cadence flags (FR-6)
    "under_delivering": "updated less than half as often as declared",
    "misdeclared_static": "declared historical whose data changed",
    # fields (MD-3), Socrata and DCAT-US
    "update_frequency": "update frequency",
    "geographic_unit": "geographic unit",
    "temporal_coverage": "temporal coverage",
    "row_label": "row label",
    "contact_email": "contact e-mail",
    "source_link": "source link",
    "keyword": "keywords",
    "modified": "last modified date",
    "publisher.name": "publisher name",
    "contactPoint.fn": "contact name",
    "contactPoint.hasEmail": "contact e-mail",
    "accessLevel": "access level",
    "accrualPeriodicity": "update frequency (accrualPeriodicity)",
    "spatial": "spatial coverage",
    "temporal": "temporal coverage",
}


def metric_label(metric_name: str) -> str:
    """A `metric` value in plain words: "freshness_state:DELINQUENT" -> "Datasets delinquent"."""
    if metric_name in LABELS:
        return LABELS[metric_name]
    for family, pattern in FAMILY_LABELS.items():
        if metric_name.startswith(family):
            member = metric_name.removeprefix(family)
            return pattern.format(member=MEMBER_WORDS.get(member, member.replace("_", " ")))
    raise KeyError(metric_name)


METRICS_BY_ID = {metric.metric_id: metric for metric in METRICS}
FAMILIES = ("inventory", "metadata", "freshness", "access", "usage", "governance")

# The `metric` values the probe metrics write (metrics/probed*.py) after the night's probes;
# the nightly compute owns every other row of a night and never deletes these.
PROBED_METRIC_NAMES = (
    "pct_stale_by_data_date",
    *next(m for m in METRICS if m.metric_id == "FR-5").names,
    *next(m for m in METRICS if m.metric_id == "FR-8").names,
    *next(m for m in METRICS if m.metric_id == "AC-1").names,
)
PROBED_METRIC_FAMILIES = ("freshness_state_by_data_date:",)
# The metrics every stored night holds once the nightly step has run (the checks and `ctdata
# check` expect a whole-portal value of each): the probe metrics FR-5, FR-8 and AC-1 come later,
# after the night's probes, or never on a portal that is not probed.
NIGHTLY_METRIC_IDS = tuple(
    m.metric_id for m in METRICS if not set(m.names) <= set(PROBED_METRIC_NAMES)
)


def metric_for(metric_name: str) -> Metric:
    """The definition a `metric` value belongs to (families such as fill_rate:<field> too)."""
    for metric in METRICS:
        for name in metric.names:
            if metric_name == name or (name.endswith(":") and metric_name.startswith(name)):
                return metric
    raise KeyError(metric_name)


def family_of(metric_id: str) -> str:
    return METRICS_BY_ID[metric_id].family
