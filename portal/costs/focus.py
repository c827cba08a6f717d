"""Reading FOCUS 1.x cost exports (CSV or Parquet) as normalised rows, streamed in batches.

Memory stays bounded whatever the file's size: CSV is read a block at a time (pyarrow, a column at a
time, handing over to Python's csv a row at a time at the first doubt), Parquet a record batch at a time
(pyarrow's iter_batches). Every value is checked; the first bad one raises FocusError naming the file,
the row (the header is row 1, as in a spreadsheet) and the column. docs/finops.md lists the columns.

Rows come out as tuples in `COLUMNS` order, ready for a batch INSERT/COPY: money as the export's own
decimal text (never a float: PostgreSQL keeps it exact), times as UTC text in the database's format,
tags as canonical JSON text (sorted keys) or "" (none).
"""

from __future__ import annotations

import csv
import json
import queue
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from itertools import repeat
from operator import itemgetter
from pathlib import Path

# FOCUS 1.x columns Plinth reads and that FOCUS makes mandatory (not null). FOCUS's other mandatory
# columns (BillingAccountId, ChargeFrequency, ContractedCost, InvoiceIssuerName, ProviderName…) are
# accepted and ignored: nothing in Plinth reads them.
REQUIRED = ("BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd",
            "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ServiceName", "ServiceCategory")
# Conditional or nullable in FOCUS: read when present, empty otherwise.
OPTIONAL = ("ChargeClass", "ResourceId", "RegionId", "Tags")
READ = REQUIRED + OPTIONAL

# Stored columns (models.CostLine), in row-tuple order.
COLUMNS = ("cost_import_id", "provider_id", "billing_period", "month", "charge_start", "charge_end", "billed_cost",
           "effective_cost", "list_cost", "currency", "charge_category", "charge_class", "service_name",
           "service_category", "resource_id", "region_id", "tags")

CATEGORIES = {c.lower(): c for c in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")}
CLASSES = {"": "", "correction": "Correction"}
CURRENCY = re.compile(r"[A-Z]{3}")
LIMIT = 1e17  # |amount| per line: what NUMERIC(28, 10) holds
TOTAL_LIMIT = 1e18  # |sum| per currency of one file: what NUMERIC(28, 10) holds (allocations store sums)
MAX_TEXT = 2000  # characters of a free-text value (ServiceName, ResourceId…)
MAX_TAGS = 8000  # characters of one line's Tags
MEMO = 100_000  # distinct timestamps/tags remembered (then forgotten and re-learnt)
PARQUET_MAGIC = b"PAR1"
# PostgreSQL's text cannot hold the NUL character (its COPY failed, unnamed); SQLite stored it. Refused
# on both, so that a file imports the same everywhere.
NUL, NUL_MESSAGE = "\x00", "must not contain a NUL character"
WIDE = Context(prec=60)  # totals: 10M lines of up to 1e17 each, to 10 decimal places, exactly


class FocusError(ValueError):
    """A file that cannot be imported: `str()` names the file, row and column."""

    def __init__(self, file: str, message: str, *, row: int | None = None, column: str | None = None) -> None:
        self.file, self.row, self.column, self.detail = file, row, column, message
        where = [file] + ([f"row {row}"] if row is not None else []) + ([f"column {column}"] if column else [])
        super().__init__(f"{', '.join(where)}: {message}")


def detect_format(path: Path) -> str:
    with open(path, "rb") as f:
        return "parquet" if f.read(4) == PARQUET_MAGIC else "csv"


def check_header(columns: list[str], file: str) -> dict[str, int]:
    """Position of each column Plinth reads. Missing required columns are all named at once; columns
    with no name are left to `unnamed_columns`."""
    seen: dict[str, int] = {}
    for i, name in enumerate(columns):
        name = (name or "").strip()
        if not name:
            continue
        if name in seen:
            raise FocusError(file, f"the column {name} appears twice", row=1)
        seen[name] = i
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        raise FocusError(file, "missing required FOCUS column" + ("s " if len(missing) > 1 else " ")
                         + ", ".join(missing) + " (docs/finops.md lists them)", row=1)
    return {c: seen[c] for c in READ if c in seen}


def unnamed_columns(columns: list[str]) -> list[int]:
    """Positions of the columns with no name — a spreadsheet saves its empty trailing columns so. Like
    any column Plinth does not read they are ignored, but only while every cell of them is empty: a
    value under no name is data nobody can place (a column name deleted by mistake?), and is named."""
    return [i for i, name in enumerate(columns) if not (name or "").strip()]


def _unnamed_value(file: str, row: int, index: int) -> FocusError:
    return FocusError(file, "a value in a column with no name in the header (name the column in the header, "
                      "or leave its cells empty)", row=row, column=str(index + 1))


def read_header(path: Path, fmt: str, file: str) -> dict[str, int]:
    if fmt == "parquet":
        return check_header(_parquet(path, file).schema_arrow.names, file)
    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            header = next(csv.reader(f), None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FocusError(file, f"not a readable CSV file ({exc})", row=1) from None
    if not header:
        raise FocusError(file, "the file is empty (a FOCUS header row is required)")
    return check_header(header, file)


def _parquet(path: Path, file: str):
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - both locks install pyarrow
        raise FocusError(file, "Parquet files need the pyarrow package (installed by `make setup`)") from None
    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several error types for a damaged file
        raise FocusError(file, f"not a readable Parquet file ({str(exc)[:200]})") from None


class Normaliser:
    """The per-value checks, with memos for the values that repeat across millions of rows (times,
    tags, currencies)."""

    def __init__(self, file: str, *, postgres: bool) -> None:
        self.file = file
        self.suffix = "+00:00" if postgres else ""
        self._when: dict = {}
        self._tags: dict = {}
        self._categories: dict = {}  # raw ChargeCategory → its canonical spelling
        self._currencies: dict = {}  # raw BillingCurrency → its checked code
        self.periods: set[str] = set()
        self.months: set[str] = set()
        self.totals: dict[str, list] = {}  # currency → [billed, effective, lines] of the rows read

    def add_totals(self, currency: str, billed: Decimal, effective: Decimal, lines: int) -> None:
        total = self.totals.get(currency)
        if total is None:
            total = self.totals[currency] = [Decimal(0), Decimal(0), 0]
        total[0] = WIDE.add(total[0], billed)
        total[1] = WIDE.add(total[1], effective)
        total[2] += lines

    def fail(self, row: int, column: str, message: str) -> FocusError:
        return FocusError(self.file, message, row=row, column=column)

    def money(self, raw, row: int, column: str, *, nullable: bool = False) -> str | None:
        if raw is None or raw == "":
            if nullable:
                return None
            raise self.fail(row, column, "empty (a number is required)")
        if raw.__class__ is str:
            text = raw.strip()
            try:
                value = float(text)
            except ValueError:
                raise self.fail(row, column, f"not a number: {raw[:40]!r}") from None
            if "_" in text or not text.isascii():  # float() also reads '1_000' and other scripts' digits ('١٢')
                raise self.fail(row, column, f"not a number: {raw[:40]!r}")
        elif isinstance(raw, int | float | Decimal) and not isinstance(raw, bool):
            value = float(raw)
            text = str(raw) if not isinstance(raw, float) else repr(raw)
        else:
            raise self.fail(row, column, f"not a number: {str(raw)[:40]!r}")
        if not -LIMIT < value < LIMIT:  # NaN fails both comparisons
            raise self.fail(row, column, f"out of range: {str(raw)[:40]!r}")
        return text

    def when(self, raw, row: int, column: str) -> tuple[str, str, str]:
        """(UTC time as stored, first day of its UTC month, its UTC date)."""
        hit = self._when.get(raw)
        if hit is None:
            hit = self._parse_when(raw, row, column)
            if len(self._when) >= MEMO:
                self._when.clear()
            self._when[raw] = hit
        return hit

    def _parse_when(self, raw, row: int, column: str) -> tuple[str, str, str]:
        if isinstance(raw, datetime):
            at = raw
        elif isinstance(raw, date):
            at = datetime(raw.year, raw.month, raw.day)
        elif isinstance(raw, str) and raw.strip():
            try:
                at = datetime.fromisoformat(raw.strip())
            except ValueError:
                raise self.fail(row, column, f"not an ISO 8601 date-time: {raw[:40]!r}") from None
        else:
            raise self.fail(row, column, "empty (a date-time is required)")
        # FOCUS times are UTC; one without an offset is read as UTC, one with an offset is converted.
        try:
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:30:00+01:00: no such UTC time
            raise self.fail(row, column, f"outside the years 1–9999 in UTC: {raw!s:.40}") from None
        stored = at.replace(tzinfo=None).isoformat(sep=" ") + self.suffix
        return stored, f"{at.year:04d}-{at.month:02d}-01", f"{at.year:04d}-{at.month:02d}-{at.day:02d}"

    def tags(self, raw, row: int) -> str:
        if raw is None or raw == "":
            return ""
        key = raw if isinstance(raw, str) else json.dumps(raw, default=str, sort_keys=True)
        hit = self._tags.get(key)
        if hit is None:
            hit = self._parse_tags(raw, row)
            if len(self._tags) >= MEMO:
                self._tags.clear()
            self._tags[key] = hit
        return hit

    def _parse_tags(self, raw, row: int) -> str:
        if isinstance(raw, str):
            if len(raw) > MAX_TAGS:
                raise self.fail(row, "Tags", f"longer than {MAX_TAGS} characters")
            try:
                value = json.loads(raw)
            except ValueError:
                raise self.fail(row, "Tags", "not a JSON object of key-value pairs") from None
        elif isinstance(raw, list):  # a Parquet map: [(key, value), …]
            value = dict(raw)
        else:
            value = raw
        if not isinstance(value, dict):
            raise self.fail(row, "Tags", "not a JSON object of key-value pairs")
        out = {}
        for k, v in value.items():
            if isinstance(v, dict | list):
                raise self.fail(row, "Tags", f"the value of {str(k)[:40]!r} is not a string")
            key, text = str(k), "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))
            if NUL in key or NUL in text:  # stored escaped, but the allocation looks the values up as text
                raise self.fail(row, "Tags", NUL_MESSAGE)
            out[key] = text
        return json.dumps(out, sort_keys=True, ensure_ascii=False, separators=(",", ":")) if out else ""

    def text(self, raw, row: int, column: str, *, required: bool = False) -> str:
        value = "" if raw is None else (raw if raw.__class__ is str else str(raw)).strip()
        if required and not value:
            raise self.fail(row, column, "empty (a value is required)")
        if len(value) > MAX_TEXT:
            raise self.fail(row, column, f"longer than {MAX_TEXT} characters")
        if NUL in value:
            raise self.fail(row, column, NUL_MESSAGE)
        return value

    def _text(self, raw, row: int, column: str, *, required: bool = False) -> str:
        # The common case (a clean, short string) without a call: this runs four times per row.
        if (raw.__class__ is str and raw and len(raw) <= MAX_TEXT and not raw[0].isspace() and not raw[-1].isspace()
                and NUL not in raw):
            return raw
        return self.text(raw, row, column, required=required)

    def _category(self, raw, row: int) -> str:
        category = CATEGORIES.get(raw.strip().lower() if isinstance(raw, str) else raw)
        if category is None:
            raise self.fail(row, "ChargeCategory", f"not a FOCUS charge category: {str(raw)[:40]!r} "
                            "(Usage, Purchase, Tax, Credit, Adjustment)")
        return category

    def _currency(self, raw, row: int) -> str:
        currency = raw.strip().upper() if isinstance(raw, str) else ""
        if not CURRENCY.fullmatch(currency):
            raise self.fail(row, "BillingCurrency", f"not an ISO 4217 currency code: {str(raw)[:20]!r}")
        return currency

    def row(self, prefix: tuple, v, n: int) -> tuple:
        """One FOCUS row (values in READ order, None for absent optional columns) as a stored tuple. The
        hot path of an import: memo lookups first, the full checks only for values not seen yet."""
        memo = self._when
        period = (memo.get(v[4]) or self.when(v[4], n, "BillingPeriodStart"))[2]
        if v[5] not in memo:
            self.when(v[5], n, "BillingPeriodEnd")
        start, month, _ = memo.get(v[6]) or self.when(v[6], n, "ChargePeriodStart")
        end = (memo.get(v[7]) or self.when(v[7], n, "ChargePeriodEnd"))[0]
        if end < start:
            raise self.fail(n, "ChargePeriodEnd", "before ChargePeriodStart")
        category = self._categories.get(v[8]) or self._category(v[8], n)
        billed = self.money(v[0], n, "BilledCost")
        effective = self.money(v[1], n, "EffectiveCost")
        listed = self.money(v[2], n, "ListCost", nullable=True)
        if category == "Credit" and (float(billed) > 0 or float(effective) > 0):
            raise self.fail(n, "BilledCost", "a Credit must not be positive (FOCUS: credits are negative amounts)")
        currency = self._currencies.get(v[3]) or self._currency(v[3], n)
        raw_class = v[11]
        if raw_class:
            charge_class = CLASSES.get(raw_class.strip().lower() if isinstance(raw_class, str) else "")
            if charge_class is None:
                raise self.fail(n, "ChargeClass", f"not a FOCUS charge class: {str(raw_class)[:40]!r} "
                                "(empty or Correction)")
        else:
            charge_class = ""
        if len(self._categories) < 64 and len(self._currencies) < 64:  # a few values, repeated: remember them
            self._categories[v[8]] = category
            self._currencies[v[3]] = currency
        self.periods.add(period)
        self.months.add(month)
        self.add_totals(currency, Decimal(billed), Decimal(effective), 1)
        raw_tags = v[14]
        tags = self._tags.get(raw_tags) if raw_tags.__class__ is str else None
        if tags is None:
            tags = self.tags(raw_tags, n)
        return (*prefix, period, month, start, end, billed, effective, listed, currency, category, charge_class,
                self._text(v[9], n, "ServiceName", required=True), self._text(v[10], n, "ServiceCategory"),
                self._text(v[12], n, "ResourceId"), self._text(v[13], n, "RegionId"), tags)


def read(path: Path, fmt: str, file: str, *, prefix: tuple, postgres: bool, batch: int,
         normaliser: Normaliser | None = None) -> Iterator[list[tuple]]:
    """Batches of stored tuples. Raises FocusError at the first bad value (nothing of the file counts)."""
    norm = normaliser or Normaliser(file, postgres=postgres)
    yield from (_read_parquet if fmt == "parquet" else _read_csv)(path, file, norm, prefix, batch)


def read_ahead(batches: Iterator[list[tuple]], norm: Normaliser, depth: int = 2) -> Iterator[tuple[list[tuple], frozenset]]:
    """`batches` read by a thread, up to `depth` ahead of the caller, each with the billing periods read
    so far (`norm.periods` up to and including that batch). pyarrow's parsing and the database's writing
    release the GIL, so on two cores the reading overlaps the writing. The reader's error (FocusError…)
    is raised here, after the batches before it; leaving the loop early stops the thread."""
    handover: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handover.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in batches:
                if not put((batch, frozenset(norm.periods))):
                    return
            put(end)
        except BaseException as exc:  # handed to the caller's thread, raised there
            put(exc)
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()

    reader = threading.Thread(target=work, name="focus-reader", daemon=True)
    reader.start()
    try:
        while (item := handover.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _read_csv(path: Path, file: str, norm: Normaliser, prefix: tuple, batch: int) -> Iterator[list[tuple]]:
    """CSV batches: the columnar reader while every value passes its checks, then (at the first doubt)
    the row reader from where it stopped, which names the bad value or, when it was a false alarm,
    goes on reading. Both give the same tuples for the same rows (tests/costs/test_columnar.py)."""
    done = 0
    try:
        for rows in _read_csv_columns(path, file, norm, prefix):
            yield rows
            done += len(rows)
        if done:
            return
    except _Doubt:
        pass
    yield from _read_csv_rows(path, file, norm, prefix, batch, skip=done)


class _Doubt(Exception):
    """The columnar reader met a value (or a CSV shape) it does not judge itself."""


CSV_BLOCK = 2 << 20  # bytes of CSV per columnar batch (~8,000 rows): larger blocks read no faster, and
# pyarrow's streaming reader then holds ~40 MiB of memory per MiB of block


def _read_csv_columns(path: Path, file: str, norm: Normaliser, prefix: tuple) -> Iterator[list[tuple]]:
    """The fast reader: pyarrow parses the CSV in C++ threads, a block at a time (memory bounded), and
    each column is checked as a whole: the repeated values (times, categories, tags, names) once per
    distinct value through the row reader's own checks, the amounts by one vectorised cast. Raises
    _Doubt instead of an error: the row reader then finds and names it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            header = next(csv.reader(f, strict=True), None)
        except (csv.Error, UnicodeDecodeError):
            raise _Doubt from None
    if not header:
        raise _Doubt
    where = check_header(header, file)
    names = [f"c{i}" for i in range(len(header))]
    wanted = {c: names[i] for c, i in where.items()}
    unnamed = [names[i] for i in unnamed_columns(header)]
    # A Python file object, not the path: given a path, pyarrow reads ahead as far as it can (the
    # whole file when parsing outruns the inserts), while a Python file is read a block at a time.
    with open(path, "rb") as raw:
        try:
            reader = pacsv.open_csv(
                raw,
                read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, block_size=CSV_BLOCK),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys([*wanted.values(), *unnamed], pa.string()),
                    include_columns=[*wanted.values(), *unnamed],
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
            for record_batch in reader:
                if any(not pc.all(pc.equal(record_batch.column(name), "")).as_py() for name in unnamed):
                    raise _Doubt
                if record_batch.num_rows:
                    yield _columns_to_rows(norm, {c: record_batch.column(name) for c, name in wanted.items()},
                                           record_batch.num_rows, prefix)
        except pa.ArrowException:  # unreadable CSV, a short row, bad UTF-8…: the row reader says where
            raise _Doubt from None


def _columns_to_rows(norm: Normaliser, cols: dict, size: int, prefix: tuple) -> list[tuple]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def each(column: str, check, parts: int = 0) -> list | tuple[list, ...]:
        """The column's values after `check` (run once per distinct value), one per row; with `parts`,
        `check` gives a tuple and each of its first `parts` items comes as its own list."""
        arr = cols.get(column)
        if arr is None:
            value = check(None)
            return tuple([value[i]] * size for i in range(parts)) if parts else [value] * size
        encoded = pc.dictionary_encode(arr)
        rows = encoded.indices.to_numpy(zero_copy_only=False)
        checked_values = [check(v) for v in encoded.dictionary.to_pylist()]

        def spread(values: list) -> list:
            distinct = np.empty(len(values), dtype=object)
            distinct[:] = values
            return distinct[rows].tolist()

        if parts:
            return tuple(spread([v[i] for v in checked_values]) for i in range(parts))
        return spread(checked_values)

    def checked(fn):
        def check(value):
            try:
                return fn(value)
            except FocusError:
                raise _Doubt from None
        return check

    def when(column: str) -> tuple[list, list, list]:
        return each(column, checked(lambda v: norm.when(v, 0, column)), parts=3)

    periods = when("BillingPeriodStart")[2]
    each("BillingPeriodEnd", checked(lambda v: norm.when(v, 0, "BillingPeriodEnd")))
    starts, months, _ = when("ChargePeriodStart")
    ends = when("ChargePeriodEnd")[0]
    if any(map(str.__lt__, ends, starts)):
        raise _Doubt
    categories = each("ChargeCategory", checked(lambda v: norm._category(v, 0)))
    currencies = each("BillingCurrency", checked(lambda v: norm._currency(v, 0)))

    def charge_class(v):
        if not v:
            return ""
        value = CLASSES.get(v.strip().lower())
        if value is None:
            raise _Doubt
        return value

    classes = each("ChargeClass", charge_class)
    amounts = {}
    for column, nullable in (("BilledCost", False), ("EffectiveCost", False), ("ListCost", True)):
        arr = cols[column]
        empty = pc.equal(arr, "")
        if pc.any(empty).as_py():
            if not nullable:
                raise _Doubt
            arr = pc.if_else(empty, pa.scalar(None, pa.string()), arr)
        try:  # stricter than Python's float(): no spaces, underscores or non-ASCII digits (the row reader's)
            values = pc.cast(arr, pa.float64())
        except pa.ArrowInvalid:
            raise _Doubt from None
        if not pc.all(pc.less(pc.abs(values), LIMIT)).as_py():  # NaN and infinities fail too
            raise _Doubt
        amounts[column] = (arr.to_pylist(), values, arr)
    if "Credit" in categories:
        credit = pc.equal(pa.array(categories, pa.string()), "Credit")
        positive = pc.or_(pc.greater(amounts["BilledCost"][1], 0), pc.greater(amounts["EffectiveCost"][1], 0))
        if pc.any(pc.and_(credit, positive)).as_py():
            raise _Doubt
    services = each("ServiceName", checked(lambda v: norm._text(v, 0, "ServiceName", required=True)))
    service_categories = each("ServiceCategory", checked(lambda v: norm._text(v, 0, "ServiceCategory")))
    resources = each("ResourceId", checked(lambda v: norm._text(v, 0, "ResourceId")))
    regions = each("RegionId", checked(lambda v: norm._text(v, 0, "RegionId")))
    tags = each("Tags", checked(lambda v: norm.tags(v, 0)))
    norm.periods.update(periods)
    norm.months.update(months)
    _add_totals(norm, currencies, amounts["BilledCost"], amounts["EffectiveCost"])
    return list(zip(*(repeat(p, size) for p in prefix), periods, months, starts, ends,
                    amounts["BilledCost"][0], amounts["EffectiveCost"][0], amounts["ListCost"][0], currencies,
                    categories, classes, services, service_categories, resources, regions, tags, strict=True))


def _add_totals(norm: Normaliser, currencies: list, billed: tuple, effective: tuple) -> None:
    """The batch's sums per currency, exact: by pyarrow in decimal128 when every amount fits 10 decimal
    places (the stored scale), else by Python's Decimal."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        table = pa.table({"c": pa.array(currencies, pa.string()), "b": pc.cast(billed[2], pa.decimal128(38, 10)),
                          "e": pc.cast(effective[2], pa.decimal128(38, 10))})
        for row in table.group_by("c").aggregate([("b", "sum"), ("e", "sum"), ("c", "count")]).to_pylist():
            norm.add_totals(row["c"], row["b_sum"], row["e_sum"], row["c_count"])
    except pa.ArrowException:
        for currency, b, e in zip(currencies, billed[0], effective[0], strict=True):
            norm.add_totals(currency, Decimal(b), Decimal(e), 1)


def _read_csv_rows(path: Path, file: str, norm: Normaliser, prefix: tuple, batch: int,
                   skip: int = 0) -> Iterator[list[tuple]]:
    """The row reader: every value checked in Python, the first bad one named. It takes over from the
    columnar reader after the `skip` data rows that reader already gave."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FocusError(file, f"not a readable CSV file ({exc})", row=1) from None
        if not header:
            raise FocusError(file, "the file is empty (a FOCUS header row is required)")
        where = check_header(header, file)
        unnamed = unnamed_columns(header)
        width = len(header)
        # An absent optional column reads the None appended to each record (index `width`).
        pick = itemgetter(*[where.get(c, width) for c in READ])
        out: list[tuple] = []
        n = 1
        row_fn = norm.row
        try:
            for record in reader:
                n += 1
                if len(record) != width:
                    if not record:
                        continue  # a blank line
                    raise FocusError(file, f"{len(record)} fields where the header has {width}", row=n)
                if skip:
                    skip -= 1
                    continue
                for i in unnamed:
                    if record[i]:
                        raise _unnamed_value(file, n, i)
                record.append(None)
                out.append(row_fn(prefix, pick(record), n))
                if len(out) >= batch:
                    yield out
                    out = []
        except csv.Error as exc:
            raise FocusError(file, f"not readable as CSV ({exc})", row=n + 1) from None
        except UnicodeDecodeError:
            raise FocusError(file, "not UTF-8 text", row=n + 1) from None
        if n == 1:
            raise FocusError(file, "no data rows after the header")
        if out:
            yield out


def _read_parquet(path: Path, file: str, norm: Normaliser, prefix: tuple, batch: int) -> Iterator[list[tuple]]:
    pf = _parquet(path, file)
    where = check_header(pf.schema_arrow.names, file)
    names = [c for c in READ if c in where]
    unnamed = unnamed_columns(pf.schema_arrow.names)
    blank = sorted({pf.schema_arrow.names[i] for i in unnamed})  # reads every column of each blank name
    n = 1
    try:
        batches = pf.iter_batches(batch_size=batch, columns=names + blank)
        for record_batch in batches:
            # The unnamed columns come in the file's order, after the named ones.
            for index, column in zip(unnamed, record_batch.columns[len(names):], strict=True):
                for j, value in enumerate(column.to_pylist()):
                    if value is not None and value != "":
                        raise _unnamed_value(file, n + 1 + j, index)
            columns = {name: record_batch.column(i).to_pylist() for i, name in enumerate(names)}
            size = record_batch.num_rows
            nones = [None] * size
            ordered = [columns.get(c, nones) for c in READ]
            out = []
            for values in zip(*ordered, strict=True):
                n += 1
                out.append(norm.row(prefix, values, n))
            yield out
    except FocusError:
        raise
    except Exception as exc:  # pyarrow's decoding errors
        raise FocusError(file, f"not readable as Parquet ({str(exc)[:200]})", row=n + 1) from None
    if n == 1:
        raise FocusError(file, "no data rows")
