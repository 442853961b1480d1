"""`energy-assets maintain`: compact and vacuum every Delta table of the lake now, and print the report.

The same work as the nightly `lake_maintenance_job`, without a Dagster run (for a one-off clean-up or a
cron outside Dagster). Settings as for the job: ENERGY_LAKE_URI, LAKE_VACUUM_RETENTION_HOURS,
LAKE_VACUUM_ENFORCE_RETENTION; the flags override them.
"""

import argparse
import sys

from energy_assets import settings
from energy_assets.lake.io_manager import storage_options_from_env
from energy_assets.maintenance.tables import VacuumSettings, discover_tables, maintain_table, report_markdown


def _known_keys() -> list[list[str]]:
    from energy_assets.definitions import defs

    return [list(key.path) for key in defs.resolve_all_asset_keys() if len(key.path) == 2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="energy-assets maintain", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None, help="lake root (default: ENERGY_LAKE_URI or data/lake)")
    parser.add_argument("--retention-hours", type=int, default=None, help="vacuum retention (default: LAKE_VACUUM_RETENTION_HOURS or 168)")
    parser.add_argument(
        "--no-enforce-retention",
        action="store_true",
        help="allow a retention shorter than a table's delta.deletedFileRetentionDuration (only when nothing else uses the lake)",
    )
    args = parser.parse_args(argv)
    try:
        env = VacuumSettings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    vacuum = VacuumSettings(
        args.retention_hours if args.retention_hours is not None else env.retention_hours,
        False if args.no_enforce_retention else env.enforce_retention_duration,
    )
    root = args.lake or settings.lake_uri()
    options = storage_options_from_env()
    known = [] if "://" not in root else _known_keys()
    tables = discover_tables(root, options, known)
    print(f"Lake {root}: {len(tables)} Delta tables; vacuum retention {vacuum.retention_hours} h (enforced: {vacuum.enforce_retention_duration})")
    reports, failures = [], {}
    for ref in tables:
        try:
            reports.append(maintain_table(ref, options, vacuum))
        except Exception as exc:  # report every table, fail at the end
            failures[ref.name] = f"{type(exc).__name__}: {exc}"
    print(report_markdown(reports, failures))
    for name, reason in failures.items():
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
