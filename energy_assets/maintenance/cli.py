"""`energy-assets maintain`: compact and vacuum every Delta table of the lake now, and print the report.

The same work as the nightly `lake_maintenance_job`, without a Dagster run (for a one-off clean-up or a
cron outside Dagster). Settings as for the job: the lake URI and storage options,
ENERGY_LAKE_VACUUM_RETENTION_HOURS, ENERGY_LAKE_VACUUM_ENFORCE_RETENTION; the flags override them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from energy_assets import settings
from energy_assets.lake.store import Lake
from energy_assets.maintenance.tables import VacuumSettings, maintain_tables, report_markdown


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets maintain", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lake", default=None, help=f"lake root (default {settings.LAKE_URI_VARIABLE} or data/lake)")
    parser.add_argument("--retention-hours", type=int, default=None, help="vacuum retention (default: ENERGY_LAKE_VACUUM_RETENTION_HOURS or 168)")
    parser.add_argument(
        "--no-enforce-retention",
        action="store_true",
        help="allow a retention shorter than a table's delta.deletedFileRetentionDuration (only when nothing else uses the lake)",
    )
    args = parser.parse_args(list(argv))
    try:
        env = VacuumSettings.from_env()
        lake = Lake.from_settings(args.lake)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    vacuum = VacuumSettings(
        args.retention_hours if args.retention_hours is not None else env.retention_hours,
        False if args.no_enforce_retention else env.enforce_retention_duration,
    )
    tables = lake.tables()
    print(f"Lake {lake.root}: {len(tables)} Delta tables; vacuum retention {vacuum.retention_hours} h (enforced: {vacuum.enforce_retention_duration})")
    reports, failures = maintain_tables(lake, tables, vacuum)
    print(report_markdown(reports, failures))
    for name, reason in failures.items():
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
