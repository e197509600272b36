"""`manage.py import_bookings FILE --company SLUG`: the first load of a marketplace's bookings.

CSV (a header row) or JSON lines, one booking a row, the columns of the bookings import (docs/data-api.md).
Idempotent by `external_id`: the rows are upserts, so a file loaded twice changes nothing the second time.
Resumable: each batch commits with its checkpoint (an ImportRecord, source `command`, keyed by the file's
SHA-256); run the same command again after a crash or Ctrl-C and it goes on after the last committed batch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from crm.feed.imports import file_format_of, import_record_run, parsed_batches, stream_rows
from crm.models import Company, ImportRecord

UNFINISHED = (ImportRecord.Status.QUEUED, ImportRecord.Status.RUNNING)


class Command(BaseCommand):
    help = "Load bookings from a CSV or JSON-lines file, with a progress bar; resumable and idempotent."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--company", required=True, help="The company's slug (or id).")
        parser.add_argument("--format", choices=["csv", "jsonl"], help="Default: from the file name.")
        parser.add_argument("--batch-rows", type=int, default=2000, help="Rows per transaction (default 2000).")
        parser.add_argument("--restart", action="store_true",
                            help="Start from the first row even if an unfinished load of this file exists.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, CI).")

    def handle(self, *args, file: Path, company: str, format: str | None, batch_rows: int, restart: bool,
               no_progress: bool, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        target = Company.objects.filter(slug=company).first() or (
            Company.objects.filter(pk=int(company)).first() if company.isdigit() else None)
        if target is None:
            raise CommandError(f"No company {company!r}.")
        try:
            file_format = format or file_format_of(file.name)
        except ValidationError as error:
            raise CommandError(error.messages[0]) from None
        if file_format not in ("csv", "jsonl"):
            raise CommandError("The command reads CSV or JSON lines.")
        record = self._record(company=target, file=file, file_format=file_format, restart=restart)
        if record.processed_rows:
            self.stdout.write(f"Resuming import #{record.pk} after row {record.processed_rows:,}.")
        def batches_from(skip: int):
            # Parsed in a child process while this one writes (two CPUs at work).
            return parsed_batches(path=str(file), file_format=file_format, kind="bookings", skip=skip,
                                  size=batch_rows)

        bar = tqdm(total=record.total_rows, initial=record.processed_rows, unit="rows", disable=no_progress,
                   file=self.stderr._out, smoothing=0.1)
        try:
            import_record_run(import_record_id=record.pk, batches_from=batches_from, on_batch=bar.update,
                              is_commit_relaxed=True)
        except KeyboardInterrupt:
            record.refresh_from_db()
            raise CommandError(
                f"Interrupted after row {record.processed_rows:,}: run the same command again to go on."
            ) from None
        finally:
            bar.close()
        record.refresh_from_db()
        self.stdout.write(
            f"Import #{record.pk} {record.status}: {record.total_rows:,} rows, {record.created_count:,} created, "
            f"{record.updated_count:,} updated, {record.unchanged_count:,} unchanged, {record.error_count:,} with errors."
        )
        for entry in record.errors[:20]:
            fields = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in entry["errors"].items())
            self.stdout.write(f"  line {entry['line']} ({entry['external_id'] or 'no external_id'}): {fields}")
        if record.error_count > 20:
            self.stdout.write(f"  ... all of them: Admin → Crm → Import records → #{record.pk}")

    def _record(self, *, company: Company, file: Path, file_format: str, restart: bool) -> ImportRecord:
        digest = hashlib.sha256()
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        unfinished = ImportRecord.objects.filter(
            company=company, kind=ImportRecord.Kind.BOOKINGS, source="command", file_sha256=digest.hexdigest(),
            status__in=UNFINISHED,
        ).order_by("-id").first()
        if unfinished is not None and not restart:
            return unfinished
        if unfinished is not None:
            unfinished.status = ImportRecord.Status.CANCELLED
            unfinished.save(update_fields=["status"])
        with file.open("rb") as handle:
            total = sum(1 for _ in stream_rows(stream=handle, file_format=file_format, kind="bookings"))
        return ImportRecord.objects.create(
            company=company, kind=ImportRecord.Kind.BOOKINGS, source="command", file_name=str(file)[:255],
            file_format=file_format, file_sha256=digest.hexdigest(), total_rows=total,
            status=ImportRecord.Status.RUNNING,
        )
