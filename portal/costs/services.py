"""Writes of the costs app: imports (queued, run, replaced per provider and billing period in one
transaction), budgets and budget alerts. Allocation lives in allocation.py."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import chain
from pathlib import Path

from celery import current_app
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import storages
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from portal.accounts import permissions
from portal.core.audit import audit_record
from portal.core.db import bulk_write_cache

from . import conf, focus
from .models import Budget, BudgetAlert, CostImport, CostLine, ImportStatus, Provider

log = logging.getLogger("plinth.costs")
SCALE = Decimal("1e-10")  # CostLine's decimal places
BULK_BYTES = 20 << 20  # a file this large defers SQLite's checkpoints to after the import
PROVIDER_NAME = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
CENTS = Decimal("0.01")  # Budget.amount's decimal places
BUDGET_LIMIT = Decimal("1e17")


def may_import(user) -> bool:
    """Cost exports are the organisation's bills: platform admins import them."""
    return permissions.is_platform_admin(user)


def _provider(name: str) -> Provider:
    name = (name or "").strip().lower()
    if not (1 <= len(name) <= 63 and PROVIDER_NAME.fullmatch(name)):
        raise ValidationError({"provider": "Give the provider as a short name: lowercase letters, digits and "
                                           "- _ . (e.g. aws, gcp-billing)"})
    provider, _ = Provider.objects.get_or_create(name=name)
    return provider


# CostImport.path: an absolute path is a file the command imports where it lies (`import_now`); a name
# under this prefix is an upload or a dropped file waiting in the default storage.
STORED_PREFIX = "costs/incoming/"


def import_queue(*, source_path: Path, file_name: str, provider: str, source: str, actor=None,
                 move: bool = True) -> CostImport:
    """Check the file's header now (a missing column answers at once), store the file in the default
    storage and queue its import for the worker. `move`: the file is ours to move (an upload's temporary file)."""
    if actor is not None and source in ("upload", "api") and not may_import(actor):
        raise PermissionDenied("Only platform admins import cost exports")
    file_name = Path(file_name or source_path.name).name[:255] or "export"
    fmt = focus.detect_format(source_path)
    focus.read_header(source_path, fmt, file_name)
    prov = _provider(provider)
    size = source_path.stat().st_size
    # In the shared storage, not on this node's disk: the worker that imports it may run elsewhere.
    with source_path.open("rb") as fh:
        stored = storages["default"].save(f"{STORED_PREFIX}{uuid.uuid4().hex}.{fmt}", File(fh, name=source_path.name))
    if move:
        source_path.unlink(missing_ok=True)
    imp = CostImport.objects.create(provider=prov, file_name=file_name, path=stored, format=fmt, source=source,
                                    size=size, created_by=actor if getattr(actor, "pk", None) else None)
    # Queued by name, as the catalog queues its tasks: tasks.py calls this module, never the reverse.
    transaction.on_commit(lambda: current_app.send_task("portal.costs.tasks.run_import", args=[imp.pk]))
    return imp


def import_now(*, path: Path, provider: str, actor=None, source: str = "command", allocate: bool = True) -> CostImport:
    """The management command's import: in this process, the file left where it is."""
    path = path.resolve()  # absolute: a relative path would read as a name in the storage (STORED_PREFIX)
    file_name = path.name
    fmt = focus.detect_format(path)
    focus.read_header(path, fmt, file_name)
    imp = CostImport.objects.create(provider=_provider(provider), file_name=file_name, path=str(path), format=fmt,
                                    source=source, size=path.stat().st_size,
                                    created_by=actor if getattr(actor, "pk", None) else None)
    return run_import(imp.pk, keep_file=True, allocate=allocate)


class _SqliteWriter:
    """Lines into SQLite as multi-row INSERTs of up to ROWS_PER_STATEMENT rows: one statement step per
    ~2,000 lines instead of one per line, during which the GIL is free for the reader's thread. Rows
    short of a full statement wait for the next batch (`close` writes the rest)."""

    ROWS_PER_STATEMENT = 32_766 // len(focus.COLUMNS)  # SQLite's bound-parameter limit since 3.32

    def __init__(self) -> None:
        self.raw = connection.connection  # the sqlite3 connection, inside Django's open transaction
        self.pending: list[tuple] = []

    def write(self, rows: list[tuple]) -> None:
        pending = self.pending + rows if self.pending else rows
        size = self.ROWS_PER_STATEMENT
        full = len(pending) - len(pending) % size
        for start in range(0, full, size):
            self.raw.execute(_INSERT_SQLITE_MANY, list(chain.from_iterable(pending[start:start + size])))
        self.pending = pending[full:]

    def close(self) -> None:
        if self.pending:
            self.raw.executemany(_INSERT_SQLITE, self.pending)
            self.pending = []


# Table and column names are the model's constants; every value is a bound parameter.
_INSERT_SQLITE = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608
    CostLine._meta.db_table, ", ".join(focus.COLUMNS), ", ".join("?" * len(focus.COLUMNS)))
_INSERT_SQLITE_MANY = "INSERT INTO {} ({}) VALUES {}".format(  # noqa: S608
    CostLine._meta.db_table, ", ".join(focus.COLUMNS),
    ", ".join(["({})".format(", ".join("?" * len(focus.COLUMNS)))] * _SqliteWriter.ROWS_PER_STATEMENT))


class _PostgresWriter:
    """Lines into PostgreSQL by COPY, a batch per COPY statement."""

    def write(self, rows: list[tuple]) -> None:
        with connection.connection.cursor() as cur, cur.copy(
                f"COPY {CostLine._meta.db_table} ({', '.join(focus.COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self) -> None:
        pass


def run_import(import_id: int, *, keep_file: bool = False, allocate: bool = True) -> CostImport:
    """Import a queued file: every line, then the provider's earlier lines of the same billing periods
    removed, in ONE transaction — a failure leaves the previous data exactly as it was. Safe to run
    twice (a finished import is not run again)."""
    imp = CostImport.objects.select_related("provider").get(pk=import_id)
    if imp.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return imp
    stored = not Path(imp.path).is_absolute()
    try:
        path = _local_copy(imp.path, imp.format) if stored else Path(imp.path)
    except OSError:
        log.exception("cost import %s: its stored file cannot be read", imp.pk)
        _failed(imp, f"{imp.file_name}: the uploaded file is gone; upload it again")
        imp.refresh_from_db()
        return imp
    CostImport.objects.filter(pk=imp.pk).update(status=ImportStatus.RUNNING)
    postgres = connection.vendor == "postgresql"
    norm = focus.Normaliser(imp.file_name, postgres=postgres)
    try:
        # The log's copy-back waits for the commit (a background thread then): a checkpoint every
        # thousand pages would re-write the table being appended to. The page cache stays as it is.
        with bulk_write_cache(imp.size, threshold=BULK_BYTES, cache_kib=None), transaction.atomic():
            connection.ensure_connection()
            Provider.objects.select_for_update().get(pk=imp.provider_id)  # one import per provider at a time
            started = time.perf_counter()
            rows, replaced, old_months = _write_lines(imp, path, norm, postgres=postgres)
            written = time.perf_counter()
            months = _record_done(imp, norm, rows=rows, replaced=replaced, old_months=old_months, keep_file=keep_file)
            log.info("cost import %s: %s rows read and written (%s earlier lines replaced) in %.1f s, recorded "
                     "in %.1f s", imp.pk, rows, replaced, written - started, time.perf_counter() - written)
    except focus.FocusError as exc:
        _failed(imp, str(exc))
    except Exception as exc:
        log.exception("cost import %s failed", imp.pk)
        _failed(imp, f"{imp.file_name}: the import failed ({type(exc).__name__}); nothing was imported")
        if not isinstance(exc, OSError):
            raise
    else:
        # The lines are committed; their months' allocation follows (idempotent: a failure here is
        # repaired by the next import, a descriptor change, or `manage.py costs allocate`).
        if allocate:
            from . import allocation

            allocation.allocate(months)
    finally:
        if stored:
            path.unlink(missing_ok=True)  # the node-local copy
            if not keep_file:
                storages["default"].delete(imp.path)
        elif not keep_file:
            path.unlink(missing_ok=True)
    imp.refresh_from_db()
    return imp


def _write_lines(imp: CostImport, path: Path, norm: focus.Normaliser, *, postgres: bool) -> tuple[int, int, set[str]]:
    """The file's lines written, and the provider's earlier lines of the same billing periods deleted:
    (lines written, lines deleted, the months the deleted lines were in)."""
    batches = focus.read(path, imp.format, imp.file_name, prefix=(imp.pk, imp.provider_id),
                         postgres=postgres, batch=int(conf.get("BATCH_ROWS")), normaliser=norm)
    writer = _PostgresWriter() if postgres else _SqliteWriter()
    # The provider's earlier lines of a billing period go when the file's first line of that
    # period comes (each batch carries the periods read so far), before any of this import's
    # own lines of it are written: an index range each, never a scan past ten million new lines.
    rows, replaced, old_months, seen = 0, 0, set(), set()
    for batch, periods in focus.read_ahead(batches, norm):
        fresh = periods - seen
        if fresh:
            old = CostLine.objects.filter(provider_id=imp.provider_id, billing_period__in=sorted(fresh))
            old_months |= {m.isoformat() for m in old.values_list("month", flat=True).distinct()}
            replaced += old._raw_delete(connection.alias)
            seen |= fresh
        writer.write(batch)
        rows += len(batch)
    writer.close()
    return rows, replaced, old_months


def _record_done(imp: CostImport, norm: focus.Normaliser, *, rows: int, replaced: int, old_months: set[str],
                 keep_file: bool) -> list[str]:
    """The import marked done with its totals, and audited: the months whose lines changed (this
    file's, and those of the earlier lines it replaced)."""
    for currency, (billed, effective, _lines) in sorted(norm.totals.items()):
        if max(abs(billed), abs(effective)) >= focus.TOTAL_LIMIT:  # the sums go to NUMERIC(28, 10) columns too
            raise focus.FocusError(imp.file_name, f"the {currency} lines add up to {max(abs(billed), abs(effective)):.3e}, "
                                   f"more than the {focus.TOTAL_LIMIT:.0e} a total may be (a unit or scale error?)")
    periods = sorted(norm.periods)
    months = sorted(norm.months | old_months)
    # Summed while reading (exact, at the stored scale): a GROUP BY over ten million lines took
    # longer than their COPY on PostgreSQL.
    totals = {c: {"billed": str(b.quantize(SCALE, context=focus.WIDE)),
                  "effective": str(e.quantize(SCALE, context=focus.WIDE)), "lines": n}
              for c, (b, e, n) in sorted(norm.totals.items())}
    CostImport.objects.filter(pk=imp.pk).update(
        status=ImportStatus.DONE, rows=rows, periods=periods, totals=totals, error="",
        finished_at=timezone.now(), path="" if not keep_file else imp.path)
    audit_record(actor=imp.created_by, action="costs.import", target=f"{imp.provider.name}:{','.join(periods)}",
                 after={"import": imp.pk, "file": imp.file_name, "rows": rows, "replaced": replaced,
                        "periods": periods, "totals": totals})
    return months


def _local_copy(name: str, fmt: str) -> Path:
    """The stored file as a temporary file on this node (the readers need a seekable local file; the
    caller deletes it). OSError when it is gone."""
    if not name.startswith(STORED_PREFIX) or ".." in name:
        raise FileNotFoundError(name)
    with storages["default"].open(name, "rb") as source, \
            tempfile.NamedTemporaryFile(prefix="plinth-cost-", suffix=f".{fmt}", delete=False) as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
    return Path(out.name)


def _failed(imp: CostImport, message: str) -> None:
    CostImport.objects.filter(pk=imp.pk).update(status=ImportStatus.FAILED, error=message[:2000],
                                                finished_at=timezone.now(), path="")


def scan_drop_dir() -> list[int]:
    """The scheduled location: queue each file in the configured directory, named
    `<provider>__<anything>.csv|.parquet`. A queued file moves out of the directory (into the default storage, and is
    deleted once imported); a refused one moves to failed/ with a `.error` note beside it. Returns the
    queued import ids."""
    root = conf.drop_dir()
    if root is None or not root.is_dir():
        return []
    queued = []
    for path in sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".parquet")):
        provider = path.name.split("__", 1)[0] if "__" in path.name else ""
        try:
            imp = import_queue(source_path=path, file_name=path.name, provider=provider, source="scheduled")
        except (focus.FocusError, ValidationError) as exc:
            failed = root / "failed"
            failed.mkdir(exist_ok=True)
            message = str(exc) if isinstance(exc, focus.FocusError) else "; ".join(
                f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            shutil.move(str(path), failed / path.name)
            (failed / f"{path.name}.error").write_text(message + "\n", encoding="utf-8")
            log.warning("scheduled cost file refused: %s", message)
        else:
            queued.append(imp.pk)
    return queued


# ---- budgets ---------------------------------------------------------------------------------------

def budget_set(*, actor, team, currency: str, amount: str) -> Budget | None:
    """Set (or with an empty/zero amount, remove) a team's monthly budget. Team admins and platform admins."""
    if not permissions.can_on_team(actor, permissions.Action.MANAGE_TEAM, team.pk):
        raise PermissionDenied("Only the team's admins set its budget")
    currency = (currency or "").strip().upper()
    if not focus.CURRENCY.fullmatch(currency):
        raise ValidationError({"currency": "An ISO 4217 code such as USD or EUR"})
    value = _budget_amount(amount)
    with transaction.atomic():
        before = Budget.objects.filter(team=team, currency=currency).first()
        if value == 0:
            Budget.objects.filter(team=team, currency=currency).delete()
            budget = None
        else:
            budget, _ = Budget.objects.update_or_create(team=team, currency=currency,
                                                        defaults={"amount": value, "updated_by": actor})
        audit_record(actor=actor, action="costs.budget.set", target=f"team:{team.name}#{currency}",
                     before=None if before is None else {"amount": str(before.amount)},
                     after=None if budget is None else {"amount": str(budget.amount)})
    return budget


def _budget_amount(amount: str) -> Decimal:
    """The amount as stored (cents), checked after rounding: 0.004 would be kept as 0.00 — a budget
    every threshold of which is reached at once — so an amount that rounds to nothing is refused
    (0 itself removes the budget)."""
    text = (amount or "0").strip() or "0"
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise ValidationError({"amount": "A number, e.g. 12000 or 12000.50"}) from None
    if not value.is_finite() or value < 0 or value >= BUDGET_LIMIT:  # bounded before it is rounded
        raise ValidationError({"amount": "A positive number below 10^17"})
    rounded = value.quantize(CENTS)
    if rounded >= BUDGET_LIMIT:
        raise ValidationError({"amount": "A positive number below 10^17"})
    if rounded == 0 and value != 0:
        raise ValidationError({"amount": f"{text[:40]} rounds to 0.00: a budget is at least 0.01 "
                                         "(0 removes the budget)"})
    return rounded


def month_start(at: datetime | date) -> date:
    return date(at.year, at.month, 1)


def check_budgets(*, now: datetime | None = None) -> int:
    """Alert each team whose spend this month (its entities, team-tagged lines and share of shared costs,
    effective cost, the budget's currency) reached 80 % / 100 % of its budget: one BudgetAlert and one
    notification per member per threshold per month. Returns how many alerts were new."""
    from portal.accounts.models import Membership
    from portal.governance import notifications

    from . import selectors

    month = month_start((now or timezone.now()).astimezone(UTC))
    budgets = list(Budget.objects.select_related("team"))
    if not budgets:
        return 0
    spent = selectors.team_month_spend(month, [b.team_id for b in budgets])
    thresholds = sorted(int(t) for t in conf.get("BUDGET_THRESHOLDS"))
    new = 0
    for budget in budgets:
        total = spent.get((budget.team_id, budget.currency), Decimal(0))
        for threshold in thresholds:
            if total * 100 < budget.amount * threshold:
                continue
            alert, created = BudgetAlert.objects.get_or_create(
                team=budget.team, currency=budget.currency, month=month, threshold=threshold,
                defaults={"spent": total, "budget": budget.amount})
            users = [m.user for m in Membership.objects.filter(team=budget.team).select_related("user")
                     if m.user.is_active]
            _, written = notifications.write(
                users, key=f"costs-budget:{budget.team.name}:{budget.currency}:{month:%Y-%m}:{threshold}",
                kind="cost-budget", url=reverse("costs:team", args=[budget.team.name]),
                message=(f"{budget.team.title or budget.team.name} reached {threshold}% of its {month:%B %Y} budget: "
                         f"{total:,.2f} of {budget.amount:,.2f} {budget.currency}"))
            new += created
    return new
