"""Fault injection tools for tests against real processes: a Redis broker that can be stopped and
started again on the same port, holds that stop a job at a known point in the middle (an MLflow call,
an SMTP DATA command, a database write), a small disk, PostgreSQL crash-restarts, and a view of what a
Celery worker is executing. Used by tests/reliability/ and tests/governance/test_worker.py.

Every hold proves where the job is (the held call arrived, the task is active and cannot have
committed); none is a sleep.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests import services


def wait_for(predicate: Callable, timeout: float = 60.0, what: str = "condition", every: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# --- Redis that can go down ----------------------------------------------------------------------


class RestartableRedis:
    """A Redis server of our own (no persistence, like the suite's), so that stopping it affects no
    other test. `restart()` brings it back on the same port, empty: every queued message is lost,
    which is what a broker restart without persistence does."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="plinth-fault-redis-"))
        self.port = services.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.service: services.Service | None = None
        self.start()

    def start(self) -> None:
        service, probe = services.start_redis(self.workdir, port=self.port)
        self.service = service
        services._wait_ready([(service, probe, services.TIMEOUTS["redis"])])

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client(self):
        import redis

        return redis.Redis.from_url(self.url)

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in `queue` plus messages delivered but not acknowledged."""
        r = self.client()
        return int(r.llen(queue)) + int(r.hlen("unacked"))

    def queued_tasks(self, queue: str = "celery") -> list[str]:
        """The task names of those messages, to say what was left behind."""
        import json

        r = self.client()
        raw = list(r.lrange(queue, 0, -1)) + [json.loads(v)[0] for v in r.hvals("unacked")]
        names = []
        for item in raw:
            message = json.loads(item) if isinstance(item, bytes | str) else item
            names.append(message.get("headers", {}).get("task", "?"))
        return names


def redeliver_unacked(broker_url: str) -> int:
    """Do now what the Redis transport does once its visibility timeout (1 h) has passed: put every
    delivered-but-unacknowledged message back on its queue. Returns how many were restored."""
    import redis
    from kombu import Connection

    before = int(redis.Redis.from_url(broker_url).hlen("unacked"))
    with Connection(broker_url, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=10_000)
    return before


# --- what a worker is doing ------------------------------------------------------------------------


def active_tasks(hostname: str, timeout: float = 2.0) -> list[dict]:
    """Tasks a worker is executing right now (Celery remote control over the broker)."""
    from portal.celery import app

    # limit=1: return as soon as the one worker asked has answered, not after the whole timeout.
    replies = app.control.inspect(destination=[hostname], timeout=timeout, limit=1).active() or {}
    return replies.get(hostname, [])


def worker_busy(hostname: str, timeout: float = 2.0) -> list[str] | None:
    """What the worker is executing, has prefetched or holds for a retry countdown ([] when idle);
    None when it does not answer."""
    from portal.celery import app

    inspect = app.control.inspect(destination=[hostname], timeout=timeout, limit=1)
    busy = []
    for query in (inspect.active, inspect.reserved, inspect.scheduled):
        replies = query()
        if not replies:
            return None
        for item in replies.get(hostname) or []:
            task = item.get("request", item)
            busy.append(f"{query.__name__}: {task.get('name')}[{task.get('id')}]")
    return busy


def worker_idle(hostname: str, timeout: float = 2.0) -> bool:
    return worker_busy(hostname, timeout) == []


def worker_responds(hostname: str) -> bool:
    """The worker is connected to the broker and answers remote control."""
    from portal.celery import app

    return bool(app.control.ping(destination=[hostname], timeout=1.0, limit=1))


def wait_active(hostname: str, task_ids: set[str], timeout: float = 60.0) -> None:
    wait_for(
        lambda: task_ids <= {t["id"] for t in active_tasks(hostname)},
        timeout=timeout,
        what=f"tasks {sorted(task_ids)} to be executing on {hostname}",
        every=0.3,
    )


def pool_pids(worker_pid: int) -> list[int]:
    """The prefork pool processes (children) of a worker's main process."""
    found: list[int] = []
    if not Path(f"/proc/{worker_pid}/task").exists():
        return found
    for task in Path(f"/proc/{worker_pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def dead(pid: int) -> bool:
    """Gone or a zombie: either way its sockets and files are closed."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")


def kill_pool(worker_pid: int) -> list[int]:
    """SIGKILL every pool process of a worker (the main process lives on and replaces them), and
    return once they are dead: a hold released earlier could still see their connections open."""
    pids = pool_pids(worker_pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: all(dead(pid) for pid in pids), timeout=30, what="the pool processes to die", every=0.02)
    return pids


def kill_worker(worker) -> list[int]:
    """SIGKILL a worker's main process and its pool at once (its process group), as a crash of the
    machine or an OOM kill of the container would; return once all are dead."""
    pids = [worker.pid, *pool_pids(worker.pid)]
    worker.kill()
    wait_for(lambda: all(dead(pid) for pid in pids), timeout=30, what="the worker to die", every=0.02)
    return pids


# --- holds ---------------------------------------------------------------------------------------


def peer_gone(conn: socket.socket) -> bool:
    """Has the other end closed this connection (its process died)? Does not consume data."""
    conn.setblocking(False)
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        conn.setblocking(True)


class HoldingProxy:
    """A TCP proxy in front of an HTTP server (MLflow) that holds every request containing `pattern`
    until released; a held request is then dropped (its sender is presumed dead by then). Counts the
    matching requests it forwarded after the release."""

    def __init__(self, upstream: str, pattern: bytes, *, forward_if_alive: bool = False) -> None:
        """`forward_if_alive`: after the release, a held request whose sender is still connected is
        forwarded (the sender survived the fault) instead of dropped."""
        host, port = upstream.split("//", 1)[1].rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.pattern = pattern
        self.forward_if_alive = forward_if_alive
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held = threading.Event()
        self.release = threading.Event()
        self.forwarded = 0
        self.holding: socket.socket | None = None
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def held_client_gone(self) -> bool:
        """The sender of the held request disconnected (its process died)."""
        return self.holding is not None and peer_gone(self.holding)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        try:
            while data := client.recv(65536):
                if self.pattern in data:
                    if not self.release.is_set():
                        self.holding = client
                        self.held.set()
                        self.release.wait(300)
                        if not self.forward_if_alive or peer_gone(client):
                            return  # dropped: the worker that sent it is dead by now
                    with self._lock:
                        self.forwarded += 1
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        # The server closed its side (e.g. an idle keep-alive connection): close the client's too, or
        # a client that sends its next request on it would wait for an answer that never comes.
        for sock in (dst, src):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.release.set()
        self.server.close()


class CuttingProxy:
    """A TCP proxy in front of an HTTP server that breaks its first `cuts` connections after `after`
    bytes of the server's answer (a dropped connection in the middle of a response: a proxy's idle
    timeout, a Wi-Fi change); later connections pass whole. Counts the connections it served."""

    def __init__(self, upstream: str, *, after: int, cuts: int = 1) -> None:
        host, port = upstream.split("//", 1)[1].rstrip("/").split(":")
        self.upstream = (host, int(port))
        self.after, self.cuts = after, cuts
        self.connections = 0
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                limit = self.after if self.connections <= self.cuts else None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        threading.Thread(target=HoldingProxy._pump, args=(client, upstream), daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[:limit - sent])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def close(self) -> None:
        self.server.close()


class SmtpSink:
    """A small SMTP server that accepts every message and records it. With `hold_next()`, the next
    message is held after its DATA, before the server's 250 reply, until `release` is set; if the
    client disconnected meanwhile (killed), the message is discarded, as a real server would: SMTP
    hands over responsibility for a message only with that 250."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.accepted: list[email.message.EmailMessage] = []
        self.discarded = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self.holding: socket.socket | None = None
        self._hold = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_next(self) -> None:
        self.held.clear()
        self.release.clear()
        self._hold = True

    def held_client_gone(self) -> bool:
        """The client of the held message disconnected (its process died)."""
        return self.holding is not None and peer_gone(self.holding)

    def messages_to(self, address: str, subject_contains: str = "") -> list[email.message.EmailMessage]:
        with self._lock:
            return [
                m for m in self.accepted
                if address in str(m["To"]) and subject_contains in str(m["Subject"])
            ]

    def matching(self, subject_contains: str) -> list[email.message.EmailMessage]:
        with self._lock:
            return [m for m in self.accepted if subject_contains in str(m["Subject"])]

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")

        def reply(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        try:
            reply("220 plinth-test-sink ESMTP")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    reply("250 plinth-test-sink")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    reply("250 OK")
                elif verb == b"DATA":
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    body = []
                    while (chunk := reader.readline()) not in (b".\r\n", b""):
                        body.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    if self._take_hold():
                        self.holding = conn
                        self.held.set()
                        self.release.wait(300)
                        if peer_gone(conn):
                            with self._lock:
                                self.discarded += 1
                            return
                    message = email.message_from_bytes(b"".join(body), policy=email.policy.default)
                    with self._lock:
                        self.accepted.append(message)
                    reply("250 OK queued")
                elif verb == b"QUIT":
                    reply("221 bye")
                    return
                else:
                    reply("502 command not implemented")
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _take_hold(self) -> bool:
        with self._lock:
            hold, self._hold = self._hold, False
        return hold

    def close(self) -> None:
        self.release.set()
        self.server.close()


class DatabaseWriteHold:
    """Hold writes from other processes, so a job that reached its write cannot commit. SQLite: this
    connection takes the database's write lock (BEGIN IMMEDIATE). PostgreSQL: it locks `tables`
    against writers and SELECT … FOR UPDATE (EXCLUSIVE mode: plain reads still pass), and `waiting()`
    says how many other sessions wait for a lock."""

    def __init__(self, tables: list[str]) -> None:
        from django.db import connection

        self.vendor = connection.vendor
        self.tables = tables
        self.conn = None
        if self.vendor == "sqlite":
            self.path = str(connection.settings_dict["NAME"])
        else:
            self.dsn = _pg_dsn(connection.settings_dict)

    def __enter__(self) -> DatabaseWriteHold:
        if self.vendor == "sqlite":
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(self.dsn)
            self.conn.execute("SET lock_timeout = '30s'")
            for table in self.tables:
                self.conn.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
        return self

    def waiting(self) -> int:
        """PostgreSQL only: sessions of this database waiting for a lock."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as other:
            row = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
        return int(row[0])

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None

    def __exit__(self, *exc) -> None:
        self.release()


def _pg_dsn(cfg: dict, *, user: str | None = None) -> str:
    parts = {
        "host": cfg.get("HOST") or "127.0.0.1",
        "port": cfg.get("PORT") or "5432",
        "dbname": cfg["NAME"],
        "user": user or cfg.get("USER") or "",
        "connect_timeout": "5",
    }
    if cfg.get("PASSWORD") and not user:
        parts["password"] = cfg["PASSWORD"]
    return " ".join(f"{k}={v}" for k, v in parts.items() if v)


# --- PostgreSQL crash-restart -------------------------------------------------------------------


def postgres_superuser_dsn() -> str:
    """The test cluster of tests/services.py trusts the `postgres` superuser on loopback."""
    from django.db import connection

    return _pg_dsn(connection.settings_dict, user="postgres")


def crash_restart_postgres(timeout: float = 60.0) -> float:
    """SIGKILL one PostgreSQL server process: the postmaster then ends every session, reinitialises
    shared memory and runs crash recovery before it accepts connections again (`restart_after_crash`,
    on by default). Every client connection is lost, as in a restart. Returns the seconds until the
    server answered again."""
    import psycopg

    dsn = postgres_superuser_dsn()
    conn = psycopg.connect(dsn, autocommit=True)
    (victim,) = conn.execute("SELECT pg_backend_pid()").fetchone()
    os.kill(victim, signal.SIGKILL)
    started = time.monotonic()
    with contextlib.suppress(Exception):
        conn.close()

    def answers() -> bool:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    # The kill is seen by the postmaster asynchronously: wait for the outage, then for the recovery.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not answers(), timeout=5, what="PostgreSQL to go down", every=0.05)
    wait_for(answers, timeout=timeout, what="PostgreSQL to come back after crash recovery")
    return time.monotonic() - started


# --- a small disk ------------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs of `size` bytes mounted on a fresh folder (needs root, or CAP_SYS_ADMIN); `fill()`
    takes all but `leave` bytes of it, `free()` gives the space back."""

    def __init__(self, size: int, *, owner: tuple[int, int] | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="plinth-small-disk-"))
        self.size = size
        opts = f"size={size},mode=0777"
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(self.path)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            self.path.rmdir()
            raise PermissionError(f"cannot mount a tmpfs ({proc.stderr.strip() or proc.returncode})")
        if owner is not None:
            os.chown(self.path, *owner)
        self.filler = self.path / ".filler"

    @staticmethod
    def possible() -> str | None:
        """None when a tmpfs can be mounted here, else why not."""
        if os.geteuid() != 0:
            return "mounting a small tmpfs needs root (or CAP_SYS_ADMIN)"
        if not shutil.which("mount"):
            return "no `mount` binary"
        return None

    def available(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Write a filler file until only about `leave` bytes are free."""
        chunk = os.urandom(64 * 1024)
        with self.filler.open("ab") as fh:
            while (free := self.available() - leave) > 0:
                try:
                    fh.write(chunk[: min(len(chunk), free)])
                    fh.flush()
                except OSError:
                    break

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        for _ in range(20):
            proc = subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
            if proc.returncode == 0:
                break
            time.sleep(0.25)  # a process that used the mount may still be exiting
        else:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
        shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def small_disk(size: int, **kwargs) -> Iterator[SmallDisk]:
    disk = SmallDisk(size, **kwargs)
    try:
        yield disk
    finally:
        disk.close()


class SmallTablespace:
    """A PostgreSQL tablespace on a small tmpfs, for a disk that fills up under chosen tables: `move()`
    them there, `fill()` it to the last page with a filler table, `free()` drops the filler. Needs the
    test cluster on this machine (tests/services.py) and root to mount; `close()` puts everything back.
    Only a write that extends a file fails on a full disk (an update inside an existing page does
    not): the jobs under test write large values (TOAST) or new rows into tables with a small
    fillfactor."""

    NAME = "plinth_fault_small"

    def __init__(self, size: int) -> None:
        import psycopg

        self.conn = psycopg.connect(postgres_superuser_dsn(), autocommit=True)
        (data_dir,) = self.conn.execute("SHOW data_directory").fetchone()
        st = os.stat(data_dir)
        self.disk = SmallDisk(size, owner=(st.st_uid, st.st_gid))
        self.disk.path.chmod(0o700)
        self.moved: list[tuple[str, bool]] = []
        try:
            self.conn.execute(f"CREATE TABLESPACE {self.NAME} LOCATION '{self.disk.path}'")
        except Exception:
            self.close()
            raise

    def move(self, table: str, *, fillfactor: int | None = None) -> None:
        """`fillfactor`: leave most of each page empty, so that every new row extends the file."""
        self.conn.execute(f'ALTER TABLE "{table}" SET TABLESPACE {self.NAME}')
        if fillfactor:
            self.conn.execute(f'ALTER TABLE "{table}" SET (fillfactor = {int(fillfactor)})')
        self.moved.append((table, bool(fillfactor)))

    def fill(self) -> None:
        import psycopg

        self.conn.execute(f"CREATE TABLE plinth_fault_filler (b bytea) TABLESPACE {self.NAME}")
        self.conn.execute("ALTER TABLE plinth_fault_filler ALTER b SET STORAGE EXTERNAL")  # no compression
        for chunk in (1024 * 1024, 64 * 1024, 4 * 1024, 256):
            while True:
                try:
                    self.conn.execute("INSERT INTO plinth_fault_filler VALUES (%s)", [os.urandom(chunk)])
                except psycopg.errors.DiskFull:
                    break

    def free(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS plinth_fault_filler")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.free()
        for table, reset in self.moved:
            with contextlib.suppress(Exception):
                self.conn.execute(f'ALTER TABLE "{table}" SET TABLESPACE pg_default')
                if reset:
                    self.conn.execute(f'ALTER TABLE "{table}" RESET (fillfactor)')
        with contextlib.suppress(Exception):
            self.conn.execute(f"DROP TABLESPACE IF EXISTS {self.NAME}")
        with contextlib.suppress(Exception):
            self.conn.close()
        self.disk.close()
