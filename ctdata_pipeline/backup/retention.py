"""Which backups to keep: restic's `forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12`.

For each rule, walking the backups newest first, the newest backup of each of the last N days
(weeks, months) that have a backup is kept; a backup kept by any rule stays, the others go.
Days, weeks (ISO) and months are New York's, like the nights. Written here rather than taken
from a library: the Python ones (grandfatherson, rotate-backups) are unmaintained since 2016
and 2020, and grandfatherson counts calendar periods back from now (a month without backups
uses up a slot) and keeps the oldest of each, not restic's rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ctdata_pipeline.partitions import NEW_YORK

KEEP_VARIABLE = "CTDATA_BACKUP_KEEP"
DEFAULT_KEEP = "daily=7,weekly=5,monthly=12"

BUCKETS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "daily": lambda moment: (moment.year, moment.month, moment.day),
    "weekly": lambda moment: moment.isocalendar()[:2],
    "monthly": lambda moment: (moment.year, moment.month),
}


class RetentionError(ValueError):
    """CTDATA_BACKUP_KEEP cannot be read."""


@dataclass(frozen=True)
class KeepPolicy:
    daily: int = 7
    weekly: int = 5
    monthly: int = 12

    @classmethod
    def parse(cls, text: str) -> KeepPolicy:
        """`daily=7,weekly=5,monthly=12`; a rule left out keeps none of its kind; empty text
        is the default."""
        text = text.strip() or DEFAULT_KEEP
        counts = dict.fromkeys(BUCKETS, 0)
        for part in text.split(","):
            rule, _, count = part.strip().partition("=")
            if rule.strip() not in BUCKETS or not count.strip().isdigit():
                raise RetentionError(
                    f"{KEEP_VARIABLE}={text!r}: {part.strip()!r} is not daily=N, weekly=N or "
                    f"monthly=N (e.g. {DEFAULT_KEEP})"
                )
            counts[rule.strip()] = int(count)
        if not any(counts.values()):
            raise RetentionError(f"{KEEP_VARIABLE}={text!r} keeps no backup at all")
        return cls(**counts)

    def describe(self) -> str:
        return f"daily={self.daily},weekly={self.weekly},monthly={self.monthly}"


def backups_to_keep(taken: Iterable[datetime], policy: KeepPolicy) -> set[datetime]:
    """The times (of `taken`) of the backups the policy keeps."""
    newest_first = sorted(set(taken), reverse=True)
    kept: set[datetime] = set()
    for rule, bucket_of in BUCKETS.items():
        left = getattr(policy, rule)
        last_bucket: tuple[int, ...] | None = None
        for moment in newest_first:
            if left == 0:
                break
            bucket = bucket_of(moment.astimezone(NEW_YORK))
            if bucket != last_bucket:
                kept.add(moment)
                last_bucket = bucket
                left -= 1
    return kept
