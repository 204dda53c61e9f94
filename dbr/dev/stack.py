"""The local stack without Docker: installs what is missing, runs a project-local PostgreSQL
cluster shaped like Supabase's, applies migrations with the Supabase CLI, and starts the
long-running processes (API, workers, webhook receivers, stand-ins) in the background.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from dbr.settings import ROOT, Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
APT_PACKAGES = [
    "postgresql-15",
    "postgresql-15-cron",
    "postgresql-15-pgtap",
    "postgresql-15-plpgsql-check",
    "libtap-parser-sourcehandler-pgtap-perl",
    "jq",  # the README walkthrough reads JSON answers with it
]
# Exact versions: supabase/types/database.ts is this CLI's `gen types` output formatted by
# this Deno, and the `types` gate compares byte for byte.
NPM_PACKAGES = ["supabase@3.1.0", "@deno/linux-x64-glibc@2.9.6"]
BOOTSTRAP_SQL = ROOT / "supabase" / "local" / "bootstrap.sql"
SEED_SQL = ROOT / "supabase" / "seed.sql"


class StackError(RuntimeError):
    pass


def _run(cmd: list[str], *, quiet: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, text=True, capture_output=quiet, **kw)
    if res.returncode != 0:
        out = (res.stdout or "") + (res.stderr or "")
        raise StackError(f"{' '.join(cmd)} failed ({res.returncode}):\n{out[-4000:]}")
    return res


def _as_root(cmd: list[str]) -> list[str]:
    return cmd if os.geteuid() == 0 else ["sudo", *cmd]


# ---------------------------------------------------------------- installs


def missing_apt_packages() -> list[str]:
    marks = {
        "postgresql-15": PG_BIN / "postgres",
        "postgresql-15-cron": Path("/usr/share/postgresql/15/extension/pg_cron.control"),
        "postgresql-15-pgtap": Path("/usr/share/postgresql/15/extension/pgtap.control"),
        "postgresql-15-plpgsql-check": Path(
            "/usr/share/postgresql/15/extension/plpgsql_check.control"
        ),
        "libtap-parser-sourcehandler-pgtap-perl": Path("/usr/bin/pg_prove"),
        "jq": Path("/usr/bin/jq"),
    }
    return [pkg for pkg, mark in marks.items() if not mark.exists()]


def ensure_apt_packages() -> list[str]:
    missing = missing_apt_packages()
    if missing:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(_as_root(["apt-get", "update", "-qq"]), env=env)
        _run(_as_root(["apt-get", "install", "-y", "-qq", *missing]), env=env)
    return missing


def supabase_bin(settings: Settings) -> Path:
    return settings.tools_dir / "node_modules" / ".bin" / "supabase"


def deno_bin(settings: Settings) -> Path:
    return settings.tools_dir / "node_modules" / "@deno" / "linux-x64-glibc" / "deno"


def ensure_node_tools(settings: Settings) -> bool:
    if supabase_bin(settings).exists() and deno_bin(settings).exists():
        return False
    settings.tools_dir.mkdir(parents=True, exist_ok=True)
    pkg = settings.tools_dir / "package.json"
    if not pkg.exists():
        pkg.write_text('{"name": "dbr-tools", "private": true}\n')
    _run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(settings.tools_dir),
            *NPM_PACKAGES,
        ]
    )
    return True


# ---------------------------------------------------------------- cluster


@dataclass(frozen=True)
class Cluster:
    data_dir: Path
    run_dir: Path
    log_file: Path
    port: int

    @classmethod
    def local(cls, settings: Settings) -> Cluster:
        base = settings.local_dir
        return cls(base / "pgdata", base / "run", base / "log" / "postgres.log", settings.pg_port)

    def _owner_cmd(self, cmd: list[str]) -> list[str]:
        # initdb refuses to run as root: the cluster belongs to the postgres user then.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def _prepare_dirs(self) -> None:
        for d in (self.data_dir.parent, self.run_dir, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.run_dir, "postgres")
            shutil.chown(self.log_file.parent, "postgres")
            # postgres must be able to reach the data dir through the checkout.
            p = self.data_dir.parent
            while p != p.parent:
                if p.stat().st_mode & 0o001 == 0:
                    p.chmod(p.stat().st_mode | 0o001)
                p = p.parent

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> bool:
        if self.initialised:
            return False
        self._prepare_dirs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, "postgres")
        pwfile = self.run_dir / "pw"
        pwfile.write_text("postgres\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        _run(
            self._owner_cmd(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        )
        pwfile.unlink()
        self.write_config()
        return True

    def server_settings(self) -> dict[str, str]:
        return {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.run_dir}'",
            "shared_preload_libraries": "'pg_cron,pg_stat_statements'",
            "cron.database_name": "'postgres'",
            # pg_cron's default runs each job over a TCP connection to localhost as the job's
            # user, which password authentication refuses ("connection failed" on every run).
            # Background workers need no connection, exactly like Supabase's own setup.
            "cron.use_background_workers": "on",
            "max_worker_processes": "32",
            "wal_level": "logical",
            "max_connections": "300",
            "shared_buffers": "'1GB'",
            "max_wal_size": "'4GB'",
            "work_mem": "'32MB'",
            "maintenance_work_mem": "'512MB'",
            "timezone": "'UTC'",
        }

    def write_config(self) -> bool:
        """Write the project's server settings into `dbr.conf`, included by postgresql.conf, so
        an existing cluster picks up changed settings too. Returns whether anything changed."""
        conf = self.data_dir / "dbr.conf"
        text = "# Written by dbr (dbr/dev/stack.py); edits are overwritten.\n" + "".join(
            f"{k} = {v}\n" for k, v in self.server_settings().items()
        )
        changed = not conf.exists() or conf.read_text() != text
        if changed:
            conf.write_text(text)
            if os.geteuid() == 0:
                shutil.chown(conf, "postgres")
        main_conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'dbr.conf'\n"
        if include not in main_conf.read_text():
            with main_conf.open("a") as f:
                f.write(include)
            changed = True
        # Clusters made before dbr.conf existed kept these in postgresql.auto.conf, which
        # PostgreSQL reads last: drop them there so dbr.conf decides.
        auto = self.data_dir / "postgresql.auto.conf"
        if auto.exists():
            keys = set(self.server_settings())
            lines = auto.read_text().splitlines(keepends=True)
            kept = [ln for ln in lines if ln.split("=", 1)[0].strip() not in keys]
            if kept != lines:
                auto.write_text("".join(kept))
                changed = True
        return changed

    @property
    def running(self) -> bool:
        res = subprocess.run(
            [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
        )
        return res.returncode == 0

    def start(self) -> bool:
        changed = self.write_config() if self.initialised else False
        if self.running:
            if not changed:
                return False
            # A changed preload library or worker setting only takes effect on restart.
            self.stop()
        self._prepare_dirs()
        _run(
            self._owner_cmd(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
        )
        return True

    def stop(self) -> bool:
        if not self.initialised or not self.running:
            return False
        _run(
            self._owner_cmd(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            )
        )
        return True

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


# ---------------------------------------------------------------- schema


def database_url(settings: Settings, dbname: str = "postgres") -> str:
    return f"postgresql://postgres:postgres@127.0.0.1:{settings.pg_port}/{dbname}"


def apply_sql_file(url: str, path: Path) -> None:
    _run(["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-X", "-f", str(path)])


def bootstrap(url: str) -> None:
    """Create the objects Supabase's image ships (roles, auth, storage, publication)."""
    apply_sql_file(url, BOOTSTRAP_SQL)


def migrate(settings: Settings, url: str) -> str:
    """Apply pending migrations with the Supabase CLI, exactly as `supabase db push` would."""
    res = _run(
        [
            str(supabase_bin(settings)),
            "migration",
            "up",
            f"--remote={url}",
            "--workdir",
            str(ROOT),
            "--yes",
            "--agent",
            "no",
        ],
        env={**os.environ, "SUPABASE_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1"},
    )
    return (res.stdout + res.stderr).strip()


MIGRATIONS_DIR = ROOT / "supabase" / "migrations"


def migration_hashes() -> dict[str, str]:
    """Version -> sha256 of each migration file."""
    return {
        f.name.split("_", 1)[0]: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(MIGRATIONS_DIR.glob("*.sql"))
    }


def stale_migrations(settings: Settings, url: str) -> list[str]:
    """Migrations applied to the local database whose files have changed (or gone) since, or
    that were added before the newest applied one: the CLI applies neither, so the database
    would silently differ from the code. Empty for a database the record does not cover."""
    with psycopg.connect(url) as conn:
        if not conn.execute(
            "select to_regclass('supabase_migrations.schema_migrations')"
        ).fetchone()[0]:
            return []
        applied = [
            v for (v,) in conn.execute("select version from supabase_migrations.schema_migrations")
        ]
    if not applied:
        return []
    record = settings.local_dir / "migrations.applied.json"
    current = migration_hashes()
    known = json.loads(record.read_text()) if record.exists() else {}
    changed = [v for v in applied if v in known and known[v] != current.get(v)]
    inserted = [v for v in current if v not in applied and v < max(applied)]
    return sorted(set(changed) | set(inserted))


def record_migrations(settings: Settings) -> None:
    record = settings.local_dir / "migrations.applied.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(migration_hashes(), indent=0) + "\n")


def seed(url: str) -> None:
    apply_sql_file(url, SEED_SQL)


def latest_migration(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select max(version) from supabase_migrations.schema_migrations"
        ).fetchone()
    return row[0] if row else None


def create_database(url: str, name: str, *, template: str | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        tmpl = f' template "{template}"' if template else ""
        conn.execute(f'create database "{name}"{tmpl}')


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


# ---------------------------------------------------------------- processes


@dataclass(frozen=True)
class Service:
    name: str
    cmd: list[str]
    port: int | None = None


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.local_dir / "run" / f"{name}.pid"


def service_pid(settings: Settings, name: str) -> int | None:
    path = _pid_file(settings, name)
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def start_service(settings: Settings, svc: Service, env: dict[str, str]) -> bool:
    if service_pid(settings, svc.name):
        return False
    log_dir = settings.local_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    (settings.local_dir / "run").mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"{svc.name}.log").open("ab")
    proc = subprocess.Popen(
        svc.cmd,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )
    _pid_file(settings, svc.name).write_text(str(proc.pid))
    return True


def wait_for_port(port: int, timeout: float = 30.0) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def stop_service(settings: Settings, name: str, timeout: float = 15.0) -> bool:
    pid = service_pid(settings, name)
    if not pid:
        _pid_file(settings, name).unlink(missing_ok=True)
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file(settings, name).unlink(missing_ok=True)
    return True


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, *args]


# ---------------------------------------------------------------- scheduled jobs


@dataclass(frozen=True)
class CronJob:
    name: str
    schedule: str
    active: bool
    last_status: str | None  # pg_cron's: starting, running, sending, connecting, succeeded, failed
    last_start: datetime | None
    last_message: str | None

    @property
    def every_minute(self) -> bool:
        return self.schedule.split() == ["*"] * 5

    def problem(self, now: datetime) -> str | None:
        """Why this job is not healthy, or None: its last run failed, or an every-minute job
        has not run for three minutes."""
        if self.last_status == "failed":
            return f"last run failed: {self.last_message or 'no message'}"
        if self.active and self.every_minute:
            if self.last_start is None:
                return "has not run yet"
            if now - self.last_start > timedelta(minutes=3):
                return f"has not run since {self.last_start:%H:%M:%S}"
        return None


def cron_jobs(url: str) -> list[CronJob]:
    """Every pg_cron job with its latest run (none where pg_cron is absent)."""
    with psycopg.connect(url) as conn:
        if not conn.execute("select to_regclass('cron.job')").fetchone()[0]:
            return []
        rows = conn.execute(
            """
            select j.jobname, j.schedule, j.active, r.status, r.start_time, r.return_message
            from cron.job j
            left join lateral (
              select d.status, d.start_time, d.return_message from cron.job_run_details d
              where d.jobid = j.jobid order by d.runid desc limit 1
            ) r on true
            order by j.jobname
            """
        ).fetchall()
    return [CronJob(*row) for row in rows]


def wait_for_cron(url: str, since: datetime, timeout: float = 90.0) -> list[CronJob]:
    """Wait until every every-minute pg_cron job has a run that started after `since` and
    succeeded; a failed run raises at once with pg_cron's message."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = [j for j in cron_jobs(url) if j.active and j.every_minute]
        failed = [j for j in jobs if j.last_status == "failed"]
        if failed:
            raise StackError(
                "pg_cron jobs failed: " + "; ".join(f"{j.name}: {j.last_message}" for j in failed)
            )
        if all(
            j.last_status == "succeeded" and j.last_start and j.last_start >= since for j in jobs
        ):
            return jobs
        if time.monotonic() > deadline:
            waiting = [j.name for j in jobs if j.last_status != "succeeded"]
            raise StackError(
                f"pg_cron jobs did not run within {timeout:.0f}s: {', '.join(waiting)}"
            )
        time.sleep(1.0)
