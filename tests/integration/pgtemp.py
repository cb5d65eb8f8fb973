"""tests/integration/pgtemp.py - a throwaway PostgreSQL cluster for the
integration tests, through tools/pg.sh (the C twin is tests/pgtemp.h).

    from pgtemp import Cluster

    with Cluster() as db:           # temp dir, initdb, start, schema.sql
        run_daemon("--db", db.conninfo)
        rows = db.query("SELECT source, acked_seq FROM source_offsets")
        db.stop()                   # PostgreSQL down (data kept) ...
        db.start()                  # ... and up again, same conninfo
    # leaving the block stops the server and removes the directory

If the test process dies without leaving the block (an exception it did
not catch, a SIGKILL from a timeout), a small reaper process it started
stops the server and removes the directory.
"""

import os
import shutil
import subprocess
import tempfile

ROOT = os.environ.get("SCOREWIRE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PG_SH = os.path.join(ROOT, "tools", "pg.sh")
SCHEMA = os.path.join(ROOT, "schema.sql")

_FIELD = "\x1f"
_RECORD = "\x1e"
_NULL = "\x01"


class Error(Exception):
    """A cluster operation or a query failed."""


class Cluster:
    """A private cluster in a temporary directory.

    fsync=False runs the server without fsync (fast; durability across a
    crash of the machine is not what a test checks). schema=False skips
    applying schema.sql.
    """

    def __init__(self, fsync=False, schema=True):
        self.fsync = fsync
        self.dir = tempfile.mkdtemp(prefix="scorewire-pg-")
        # The server may run as another user (postgres): let it in.
        os.chmod(self.dir, 0o755)
        self.pgdir = os.path.join(self.dir, "pg")
        self.conninfo = None
        self._reaper = subprocess.Popen(
            ["sh", "-c",
             'if read done; then exit 0; fi; '
             '"$0" stop "$1" immediate >/dev/null 2>&1; rm -rf "$2"',
             PG_SH, self.pgdir, self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.start()
            if schema:
                self.apply_schema()
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _pg_sh(self, *args):
        cmd = [PG_SH]
        if not self.fsync:
            cmd.append("--no-fsync")
        cmd += list(args)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise Error("tools/pg.sh %s failed (%d): %s" %
                        (" ".join(args), r.returncode, r.stderr.strip()))
        return r.stdout.strip()

    def start(self):
        """Starts the server (initdb on first use); same port every time."""
        self.conninfo = self._pg_sh("start", self.pgdir)
        return self.conninfo

    def stop(self, mode="fast"):
        """Stops the server, keeping its data: "fast" or "immediate" (as
        after a crash)."""
        self._pg_sh("stop", self.pgdir, mode)

    def is_running(self):
        r = subprocess.run([PG_SH, "status", self.pgdir],
                           capture_output=True, text=True)
        return r.returncode == 0

    def apply_schema(self):
        self.psql("-q", "-f", SCHEMA)

    def psql(self, *args):
        """Runs psql with @args against the cluster; returns its stdout."""
        r = subprocess.run(
            ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", self.conninfo]
            + list(args), capture_output=True, text=True)
        if r.returncode != 0:
            raise Error("psql %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def query(self, sql):
        """Runs @sql; returns its rows as tuples of str (None for NULL)."""
        out = self.psql("-A", "-t", "-F", _FIELD, "-R", _RECORD,
                        "-P", "null=" + _NULL, "-c", sql)
        out = out.rstrip("\n")
        if out.endswith(_RECORD):
            out = out[:-1]
        if out == "":
            return []
        return [tuple(None if v == _NULL else v for v in rec.split(_FIELD))
                for rec in out.split(_RECORD)]

    def value(self, sql):
        """The single value @sql returns."""
        rows = self.query(sql)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise Error("%s: expected one value, got %r" % (sql, rows))
        return rows[0][0]

    def close(self):
        """Stops the server at once and removes the directory."""
        if self.dir is None:
            return
        try:
            if os.path.exists(os.path.join(self.pgdir, "data")):
                subprocess.run([PG_SH, "stop", self.pgdir, "immediate"],
                               capture_output=True)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            try:
                self._reaper.communicate(b"done\n", timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._reaper.kill()
