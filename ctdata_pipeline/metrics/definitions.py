"""Plan metrics, version 1 (shared/spec/metrics.md), as data: what each metric means, how its
numerator and denominator are counted, and the constants its SQL uses. The report's "how each
number is computed" section and the metric assets' descriptions are generated from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METRIC_VERSION = 1


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
        ("datasets_added", "datasets_removed", "datasets_renamed"),
        "Datasets added, removed and renamed",
        "inventory",
        "In-scope dataset ids present tonight and not in the portal's previous snapshot (added), "
        "the reverse (removed), and ids in both whose title changed (renamed). Empty on a "
        "portal's first snapshot.",
        "datasets changed",
        "none (a count)",
        headline=True,
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
        ("fill_rate:",),
        "Fill rate of each standard field",
        "metadata",
        "For each standard field, the share of in-scope datasets where it is not empty.",
        "in-scope datasets with the field filled",
        "in-scope datasets",
        better="higher",
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
        ("freshness_state:",),
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
    ),
    Metric(
        "FR-2",
        ("pct_stale",),
        "Stale datasets",
        "freshness",
        "OVERDUE and DELINQUENT datasets among those with a schedule and a known age. Read it "
        "beside FR-3: deleting a dataset's update frequency must not make a portal look fresher.",
        "OVERDUE + DELINQUENT",
        "FRESH + DUE + OVERDUE + DELINQUENT",
        headline=True,
        better="lower",
    ),
    Metric(
        "FR-2s",
        ("pct_stale_strict",),
        "Stale datasets, no grace",
        "freshness",
        "As FR-2, counting DUE datasets as stale too.",
        "DUE + OVERDUE + DELINQUENT",
        "FRESH + DUE + OVERDUE + DELINQUENT",
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
}
FAMILY_LABELS = {
    "assets_total:": "Assets of type {member}",
    "fill_rate:": "Fill rate: {member}",
    "pct_band:": "Datasets in the {member} score band",
    "freshness_state:": "Datasets {member}",
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
FAMILIES = ("inventory", "metadata", "freshness", "usage", "governance")


def metric_for(metric_name: str) -> Metric:
    """The definition a `metric` value belongs to (families such as fill_rate:<field> too)."""
    for metric in METRICS:
        for name in metric.names:
            if metric_name == name or (name.endswith(":") and metric_name.startswith(name)):
                return metric
    raise KeyError(metric_name)


def family_of(metric_id: str) -> str:
    return METRICS_BY_ID[metric_id].family
