"""tests/integration/test_pgtemp.py - the PostgreSQL harness the integration
tests stand on: tools/pg.sh through pgtemp.py. A cluster starts, takes
schema.sql twice, keeps its data and its conninfo across a stop (fast and
immediate), and leaves nothing behind, even when its test is killed."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgtemp  # noqa: E402

TABLES = ["feed_events", "incidents", "match_updates", "matches",
          "rejected_documents", "source_offsets"]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def test_cluster():
    with pgtemp.Cluster() as db:
        check(db.is_running(), "running after start")
        db.apply_schema()  # the second time: idempotent
        got = [r[0] for r in db.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' ORDER BY 1")]
        check(got == TABLES, "tables: %r" % got)

        db.psql("-q", "-c", "INSERT INTO source_offsets (source, acked_seq)"
                " VALUES ('feed-a', 7), ('feed|b', 0)")
        rows = db.query("SELECT source, acked_seq, NULL, '' FROM"
                        " source_offsets ORDER BY source")
        check(rows == [("feed-a", "7", None, ""), ("feed|b", "0", None, "")],
              "rows: %r" % rows)
        check(db.query("SELECT 1 WHERE false") == [], "no rows")

        conninfo = db.conninfo
        for mode in ("fast", "immediate"):
            db.stop(mode)
            check(not db.is_running(), "stopped (%s)" % mode)
            failed = subprocess.run(["psql", "-X", "-d", conninfo, "-c", ""],
                                    capture_output=True)
            check(failed.returncode != 0, "no server while stopped")
            db.start()
            check(db.conninfo == conninfo, "same conninfo after a restart")
            check(db.value("SELECT acked_seq FROM source_offsets"
                           " WHERE source = 'feed-a'") == "7",
                  "data kept across a %s stop" % mode)
        where = db.dir
    check(not os.path.exists(where), "directory removed")


def test_reaper():
    """A test killed outright still leaves no server and no directory."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; sys.path.insert(0, %r); import pgtemp, time\n"
         "db = pgtemp.Cluster(schema=False)\n"
         "print(db.dir, flush=True)\n"
         "time.sleep(600)" % os.path.dirname(os.path.abspath(__file__))],
        stdout=subprocess.PIPE, text=True)
    where = child.stdout.readline().strip()
    check(os.path.isdir(where), "the child made its cluster")
    pid_file = os.path.join(where, "pg", "data", "postmaster.pid")
    with open(pid_file) as f:
        postmaster = int(f.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    for _ in range(300):  # up to 30 s
        if not os.path.exists(where) and not alive(postmaster):
            return
        time.sleep(0.1)
    raise AssertionError("the reaper left %s (postmaster %d alive: %s)" %
                         (where, postmaster, alive(postmaster)))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main():
    for t in (test_cluster, test_reaper):
        t()
        print("ok", t.__name__, flush=True)


if __name__ == "__main__":
    main()
