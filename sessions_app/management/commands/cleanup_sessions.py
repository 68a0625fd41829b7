"""`manage.py cleanup_sessions`: end expired sessions, delete those past retention."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.services import sessions_cleanup


class Command(BaseCommand):
    help = "Mark expired sessions inactive and delete sessions (with their messages) that ended long ago."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be done; change nothing.")
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="DAYS",
            default=None,
            help="Delete sessions that ended more than DAYS ago (default: SESSION_RETENTION_DAYS).",
        )

    def handle(self, *args, dry_run: bool, older_than: int | None, **options):
        days = settings.SESSION_RETENTION_DAYS if older_than is None else older_than
        if days < 0:
            raise CommandError("--older-than must be zero or more days")
        report = sessions_cleanup(older_than_days=days, dry_run=dry_run)
        verb = "Would" if dry_run else "Did"
        self.stdout.write(
            f"{verb} mark {report.expired_marked} expired session(s) inactive; "
            f"{verb.lower()} delete {report.sessions_deleted} session(s) that ended more than {days} day(s) ago, "
            f"with {report.messages_deleted} message(s)."
        )
