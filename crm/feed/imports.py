"""File imports: a CSV, XLSX or JSON-lines file of one kind of row, previewed, then written in batches.

`import_record_create` keeps the file and counts its rows (an `ImportRecord`: who, when, what);
`import_preview` runs the first IMPORT_PREVIEW_ROWS rows through the writer and rolls back, so the
preview shows exactly what the import will do, row by row; `import_record_confirm` imports a small
file at once and queues a large one as background work; `import_record_run` does the work in
batches of IMPORT_BATCH_ROWS, each batch committed with its progress (the checkpoint a resumed run
starts from), and stops at a deadline so the ledger can queue the next slice.

crm imports nothing above it: the background work goes through the job ledger by a hook that engage
registers (`import_enqueue_hook_register`, from engage/handlers/imports.py), the way event hooks do.
Without one (crm used alone) a confirmed import runs at once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from crm.feed.rows import ROW_CLASSES, RowProblem
from crm.feed.services import CREATED, ERROR, UNCHANGED, UPDATED, RowResult, rows_write
from crm.models import Company, ImportRecord, User

FORMATS = ("csv", "xlsx", "jsonl")
# Columns an export writes that an import reads past (computed, or set by the system).
READ_ONLY_COLUMNS = {"contact_id", "last_booking_at", "created_at", "updated_at", "ratings_avg_computed"}
READ_ONLY_COLUMNS_BY_KIND = {
    "bookings": {"updated_at"},  # a booking's created_at is when it was made: importable
}

IMPORT_ENQUEUE_HOOKS: list[Callable[..., None]] = []


def import_enqueue_hook_register(hook: Callable[..., None]) -> None:
    """Register `hook(*, import_record)`: queue the record's background import in the caller's transaction."""
    if hook not in IMPORT_ENQUEUE_HOOKS:
        IMPORT_ENQUEUE_HOOKS.append(hook)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def import_batch_rows() -> int:
    return _setting("IMPORT_BATCH_ROWS", 1000)


# --- reading files ---------------------------------------------------------------------------------


def file_format_of(file_name: str) -> str:
    suffix = PurePath(file_name).suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix not in FORMATS:
        raise ValidationError({"file": "A .csv, .xlsx or .jsonl file, please."})
    return suffix


def file_rows(*, data: bytes, file_format: str, kind: str, skip: int = 0) -> Iterator[dict[str, Any]]:
    """The file's rows as dicts, after the first `skip`; a CSV or XLSX header row names the columns.

    Streams: a large file is never held as rows in memory. Cells of read-only columns are dropped.
    """
    yield from stream_rows(stream=io.BytesIO(data), file_format=file_format, kind=kind, skip=skip)


def stream_rows(*, stream: BinaryIO, file_format: str, kind: str, skip: int = 0) -> Iterator[dict[str, Any]]:
    """`file_rows` of an open binary file (the command reads from disk)."""
    ignored = READ_ONLY_COLUMNS_BY_KIND.get(kind, READ_ONLY_COLUMNS)
    for index, row in enumerate(_raw_rows(stream=stream, file_format=file_format)):
        if index < skip:
            continue
        yield {key: value for key, value in row.items() if key not in ignored} if isinstance(row, dict) else row


def _raw_rows(*, stream: BinaryIO, file_format: str) -> Iterator[Any]:
    if file_format == "csv":
        try:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            reader = csv.DictReader(text)
            for row in reader:
                if None in row:
                    yield RowProblem("More cells than columns.")
                    continue
                yield {key.strip(): (value or "").strip() for key, value in row.items() if key is not None}
        except UnicodeDecodeError:
            raise ValidationError({"file": "The CSV file is not UTF-8 text."}) from None
        except csv.Error as error:
            raise ValidationError({"file": f"Not a readable CSV file: {error}"}) from None
    elif file_format == "xlsx":
        yield from _xlsx_rows(stream)
    elif file_format == "jsonl":
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                yield RowProblem(f"Line {number} is not JSON.")
                continue
            yield {key: _jsonl_text(value) for key, value in row.items()} if isinstance(row, dict) else row
    else:
        raise ValidationError({"file": f"Unknown format {file_format!r}."})


def _jsonl_text(value: Any) -> Any:
    # JSON lines are read in text mode like a CSV: numbers and booleans become their text.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def _xlsx_rows(stream: BinaryIO) -> Iterator[dict[str, str]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises several kinds for a file that is not a workbook
        raise ValidationError({"file": f"Not a readable XLSX file: {error}"}) from None
    try:
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(cell).strip() if cell is not None else "" for cell in next(rows, ())]
        for values in rows:
            if all(value in (None, "") for value in values):
                continue
            yield {name: _cell_text(value) for name, value in zip(header, values, strict=False) if name}
    finally:
        workbook.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()  # a date cell without a zone: read in the company's zone
    return str(value).strip()


def file_rows_count(*, data: bytes, file_format: str) -> int:
    return sum(1 for _ in _raw_rows(stream=io.BytesIO(data), file_format=file_format))


# --- the record -------------------------------------------------------------------------------------


def import_record_create(
    *, company: Company, kind: str, file_name: str, data: bytes, user: User | None, source: str = "console"
) -> ImportRecord:
    """Keep an uploaded file for preview and import; ValidationError if it is unreadable or too large."""
    if kind not in ImportRecord.Kind.values:
        raise ValidationError({"kind": f"Unknown kind {kind!r}."})
    file_format = file_format_of(file_name)
    if len(data) > _setting("IMPORT_MAX_FILE_BYTES", 200 * 1024 * 1024):
        raise ValidationError({"file": "The file is larger than IMPORT_MAX_FILE_BYTES."})
    total = file_rows_count(data=data, file_format=file_format)
    if total == 0:
        raise ValidationError({"file": "The file has no rows."})
    return ImportRecord.objects.create(
        company=company, kind=kind, source=source, file_name=PurePath(file_name).name[:255], file_format=file_format,
        file_sha256=hashlib.sha256(data).hexdigest(), data=data, total_rows=total, created_by=user,
    )


@dataclass
class Preview:
    rows: int
    counts: dict[str, int]
    errors: list[dict[str, Any]]
    sample: list[dict[str, Any]] = field(default_factory=list)
    is_partial: bool = False


def import_preview(*, import_record: ImportRecord, limit: int | None = None) -> Preview:
    """What importing the first `limit` rows would do (all of it rolled back): counts, failing rows, a sample."""
    limit = limit or _setting("IMPORT_PREVIEW_ROWS", 10000)
    counts = {CREATED: 0, UPDATED: 0, UNCHANGED: 0, ERROR: 0}
    errors: list[dict[str, Any]] = []
    sample: list[dict[str, Any]] = []
    seen = 0
    for offset, batch in _batches(import_record, skip=0, limit=limit):
        results = rows_write(company=import_record.company, kind=import_record.kind, rows=batch, text=True,
                             source="import", dry_run=True)
        for result, row in zip(results, batch, strict=True):
            counts[result.status] += 1
            if result.status == ERROR:
                errors.append(_error_entry(offset + result.row, result))
            elif len(sample) < 10:
                sample.append({"line": _line(offset + result.row), "status": result.status, "values": row})
        seen += len(batch)
    return Preview(rows=seen, counts=counts, errors=errors, sample=sample, is_partial=seen < import_record.total_rows)


def _line(index: int) -> int:
    """The spreadsheet line of the index-th data row (line 1 is the header)."""
    return index + 2


def _error_entry(index: int, result: RowResult) -> dict[str, Any]:
    return {"line": _line(index), "external_id": result.external_id, "errors": result.errors}


def _batches(
    import_record: ImportRecord, *, skip: int, limit: int | None = None, rows: Iterator | None = None,
    size: int | None = None,
) -> Iterator[tuple[int, list]]:
    size = size or import_batch_rows()
    batch: list = []
    offset = skip
    taken = 0
    if rows is None:
        rows = file_rows(data=bytes(import_record.data), file_format=import_record.file_format,
                         kind=import_record.kind, skip=skip)
    for row in rows:
        batch.append(row)
        taken += 1
        if len(batch) == size or (limit is not None and taken == limit):
            yield offset, batch
            offset += len(batch)
            batch = []
            if limit is not None and taken >= limit:
                return
    if batch:
        yield offset, batch


def import_record_confirm(*, import_record: ImportRecord, user: User | None) -> ImportRecord:
    """Import a previewed file: at once when small (IMPORT_INLINE_MAX_ROWS), else queued for the background."""
    with transaction.atomic():
        record = ImportRecord.objects.select_for_update().get(pk=import_record.pk)
        if record.status != ImportRecord.Status.PREVIEWED:
            return record  # confirmed twice (a double click): the first one stands
        record.status = ImportRecord.Status.QUEUED
        record.save(update_fields=["status"])
        background = record.total_rows > _setting("IMPORT_INLINE_MAX_ROWS", 2000) and IMPORT_ENQUEUE_HOOKS
        if background:
            for hook in IMPORT_ENQUEUE_HOOKS:
                hook(import_record=record)
    if not background:
        import_record_run(import_record_id=record.pk)
    record.refresh_from_db()
    return record


def import_record_cancel(*, import_record: ImportRecord) -> bool:
    """Stop an import that has not finished; rows already written stay. False if it had finished."""
    cancelled = ImportRecord.objects.filter(
        pk=import_record.pk, status__in=[ImportRecord.Status.PREVIEWED, ImportRecord.Status.QUEUED,
                                         ImportRecord.Status.RUNNING],
    ).update(status=ImportRecord.Status.CANCELLED, finished_at=timezone.now(), data=b"")
    return bool(cancelled)


def import_record_run(
    *,
    import_record_id: int,
    deadline: float | None = None,
    rows_from: Callable[[int], Iterator] | None = None,
    batch_rows: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    batches_from: Callable[[int], Iterator[tuple[int, list, tuple]]] | None = None,
    is_commit_relaxed: bool = False,
) -> bool:
    """Import the record's rows from its checkpoint on, a batch per transaction; True when it is done.

    Stops after the batch that passes `deadline` (time.monotonic()) and returns False: call it again
    (the ledger queues the next slice). Safe to run twice: a batch and its checkpoint commit together,
    and every row is an upsert, so a batch repeated after a crash changes nothing.
    `rows_from(skip)`: where the rows come from when the file is not kept in the record (the command
    reads its file from disk); `batches_from(skip)`: batches already parsed, as (offset, rows,
    (valid, errors)) (the command parses in another process, `parsed_batches`); `on_batch(rows)` is
    told after each committed batch (a progress bar). `is_commit_relaxed`: on PostgreSQL, commits do
    not wait for the disk (a batch and its checkpoint commit together, so a crash loses at most the
    last batches, which the next run does again): the command's first load.
    """
    record = ImportRecord.objects.select_related("company", "created_by").get(pk=import_record_id)
    if record.status in (ImportRecord.Status.COMPLETED, ImportRecord.Status.CANCELLED, ImportRecord.Status.FAILED):
        return True
    ImportRecord.objects.filter(pk=record.pk, started_at__isnull=True).update(started_at=timezone.now())
    ImportRecord.objects.filter(pk=record.pk, status=ImportRecord.Status.QUEUED).update(
        status=ImportRecord.Status.RUNNING)
    kept_errors = _setting("IMPORT_MAX_REPORTED_ERRORS", 5000)
    try:
        skip = record.processed_rows
        if batches_from is not None:
            batches = batches_from(skip)
        else:
            rows = rows_from(skip) if rows_from is not None else None
            batches = ((offset, batch, None) for offset, batch in _batches(record, skip=skip, rows=rows,
                                                                           size=batch_rows))
        for offset, batch, parsed in batches:
            with transaction.atomic():
                if is_commit_relaxed and connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL synchronous_commit = off")
                current = ImportRecord.objects.select_for_update().only("status", "processed_rows", "errors") \
                    .get(pk=record.pk)
                if current.status == ImportRecord.Status.CANCELLED:
                    return True
                if current.processed_rows != offset:
                    return False  # another run got ahead of this one: it carries on
                results = rows_write(company=record.company, kind=record.kind, rows=batch, text=True,
                                     actor=record.created_by, source="import", parsed=parsed)
                counts = {CREATED: 0, UPDATED: 0, UNCHANGED: 0, ERROR: 0}
                new_errors = []
                for result in results:
                    counts[result.status] += 1
                    if result.status == ERROR and len(current.errors) + len(new_errors) < kept_errors:
                        new_errors.append(_error_entry(offset + result.row, result))
                ImportRecord.objects.filter(pk=record.pk).update(
                    processed_rows=offset + len(batch),
                    created_count=F("created_count") + counts[CREATED],
                    updated_count=F("updated_count") + counts[UPDATED],
                    unchanged_count=F("unchanged_count") + counts[UNCHANGED],
                    error_count=F("error_count") + counts[ERROR],
                    errors=current.errors + new_errors,
                )
            if on_batch is not None:
                on_batch(len(batch))
            if deadline is not None and time.monotonic() > deadline:
                return False
    except ValidationError as error:
        _import_record_fail(record, "; ".join(error.messages))
        return True
    ImportRecord.objects.filter(pk=record.pk, status=ImportRecord.Status.RUNNING).update(
        status=ImportRecord.Status.COMPLETED, finished_at=timezone.now(), data=b""
    )
    return True


def parsed_batches(
    *, path: str, file_format: str, kind: str, skip: int, size: int
) -> Iterator[tuple[int, list[dict], tuple[list[dict], dict[int, dict]]]]:
    """The file's batches from row `skip` on, parsed (`rows_validate`) in a child process a few batches
    ahead of the caller, so parsing one batch and writing the one before run on two CPUs at once.

    The child only reads the file and parses: it never touches the database (the parent's
    connections are closed before the fork and reopen on first use). A batch's rows come along, so
    the writer can name failing rows by their external id.
    """
    import multiprocessing

    from django.db import connections

    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=3)
    connections.close_all()
    process = context.Process(target=_parse_worker, args=(queue, path, file_format, kind, skip, size), daemon=True)
    process.start()
    try:
        while True:
            item = queue.get()
            if item is None:
                return
            if isinstance(item, str):
                raise ValidationError({"file": item})
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()


def _parse_worker(queue, path: str, file_format: str, kind: str, skip: int, size: int) -> None:
    from crm.feed.rows import rows_validate

    try:
        with open(path, "rb") as handle:
            rows = stream_rows(stream=handle, file_format=file_format, kind=kind, skip=skip)
            for offset, batch in _batches(None, skip=skip, rows=rows, size=size):
                queue.put((offset, batch, rows_validate(ROW_CLASSES[kind], batch, text=True)))
    except ValidationError as error:
        queue.put("; ".join(error.messages))
        return
    queue.put(None)


def _import_record_fail(record: ImportRecord, message: str) -> None:
    ImportRecord.objects.filter(pk=record.pk).update(
        status=ImportRecord.Status.FAILED, finished_at=timezone.now(), last_error=message[:2000]
    )


def import_record_fail(*, import_record_id: int, message: str) -> None:
    """Mark an import failed (its background work gave up); the rows it wrote stay."""
    record = ImportRecord.objects.get(pk=import_record_id)
    _import_record_fail(record, message)
