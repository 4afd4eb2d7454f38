"""Maintenance commands: `python -m backend.cli archive-idle --days N [--dry-run]`."""

import argparse
import sys

from backend.core.config import settings
from backend.core.db import engine, migration_problem, run_unit_of_work
from backend.core.startup_errors import exit_on_configuration_error
from backend.services import archive


def _archive_idle(arguments: argparse.Namespace) -> int:
    result = run_unit_of_work(archive.archive_idle, days=arguments.days, dry_run=arguments.dry_run)
    for conversation in result.conversations:
        when = conversation.updated_at.strftime("%Y-%m-%d %H:%M")
        owner = f"user {conversation.user_id}"
        print(f"{conversation.uuid}  {owner}  idle since {when}  {conversation.title or ''}")
    verb = "would be archived (dry run)" if result.dry_run else "archived"
    print(f"{result.count} conversation(s) idle for {arguments.days}+ days {verb}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    idle = commands.add_parser("archive-idle", help="archive conversations idle for N days")
    idle.add_argument("--days", type=int, required=True, help="idle for at least this many days")
    idle.add_argument("--dry-run", action="store_true", help="list them, change nothing")
    arguments = parser.parse_args(argv)
    if arguments.days < 1:
        parser.error("--days must be at least 1")
    with exit_on_configuration_error(database_url=settings.DATABASE_URL):
        if problem := migration_problem(engine):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        return _archive_idle(arguments)


if __name__ == "__main__":
    sys.exit(main())
