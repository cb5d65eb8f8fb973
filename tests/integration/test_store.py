#!/usr/bin/env python3
"""tests/integration/test_store.py - the durable record through the real
daemon: scorewire-feedsim sends, a throwaway PostgreSQL keeps, and the
tables must hold every accepted event exactly once and the matches and
incidents feedsim's reference model expects, across a forced reconnect,
PostgreSQL stopped mid-stream, and kill -9 of the daemon.

Needs the daemon with every stage wired (ingest, model, store): until then
it fails, at the first wait for the feed port.
"""

import json
import time
import os
import signal
import urllib.error
import urllib.request

from harness import (Cleanup, Proc, check, free_port, port_open, program,
                     run_tests, tmpdir, wait_until)
from pgtemp import Cluster

SCOREWIRE = program("scorewire")
FEEDSIM = program("scorewire-feedsim")
RUN_TIMEOUT = 120  # s: an upper bound for a hung run, never a figure


class Daemon:
    """The daemon on fixed ports, so that it can be restarted in place."""

    def __init__(self, cleanup, conninfo, name="daemon"):
        self.cleanup = cleanup
        self.name = name
        self.feed_port = free_port()
        self.http_port = free_port()
        self.argv = [SCOREWIRE, "--db", conninfo,
                     "--bind", "127.0.0.1",
                     "--feed-port", str(self.feed_port),
                     "--http-port", str(self.http_port),
                     "--admin-port", str(free_port())]
        self.runs = []
        self.start()

    def start(self):
        p = self.cleanup.add(Proc(f"{self.name}{len(self.runs)}", self.argv))
        self.runs.append(p)
        # The feed port opens last: the store has loaded and the model is
        # rebuilt by then.
        wait_until("the daemon to start",
                   lambda: port_open(self.feed_port) or not p.alive(),
                   timeout=60)
        check(p.alive(), f"the daemon exited: {p.output()[-2000:]}")
        check(port_open(self.feed_port),
              "the daemon started without a feed port: are ingest, model "
              "and store wired into app/main.c?")

    @property
    def proc(self):
        return self.runs[-1]

    def kill9(self):
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self):
        return "".join(p.output() for p in self.runs)

    def readyz(self):
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.http_port}/readyz",
                    timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None


def feedsim(cleanup, daemon, expect, *args, name="feedsim"):
    """Starts feedsim against @daemon, writing its expected state to
    @expect."""
    return cleanup.add(Proc(name, [FEEDSIM, "--port", str(daemon.feed_port),
                                   "--expect", expect, "--sent", "sim",
                                   "--peer-timeout", "10", "-q"]
                            + list(args)))


def finish(proc):
    """Waits for feedsim; returns its stats line. It must have delivered
    everything."""
    rc = proc.wait(timeout=RUN_TIMEOUT)
    out = proc.output()
    lines = [ln for ln in out.splitlines() if ln.startswith('{"complete"')]
    check(lines, f"feedsim printed no stats (exit {rc}): {out[-2000:]}")
    stats = json.loads(lines[-1])
    check(rc == 0 and stats["complete"],
          f"feedsim exit {rc}, not complete: {lines[-1]}")
    return stats


def load_expect(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_events(db, stats):
    """Every event of every source is stored once, and acked."""
    total = 0
    for name, src in stats["sources"].items():
        last = src["last_seq"]
        n, lo, hi = db.query(
            "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0)"
            f" FROM feed_events WHERE source = '{name}'")[0]
        check((int(n), int(lo), int(hi)) == (last, 1 if last else 0, last),
              f"{name}: feed_events holds {n} rows, seq {lo}..{hi}; "
              f"feedsim sent seq 1..{last}")
        acked = db.value("SELECT coalesce((SELECT acked_seq FROM"
                         f" source_offsets WHERE source = '{name}'), 0)")
        check(int(acked) == last == src["acked"],
              f"{name}: acked_seq {acked}, feedsim sent {last}, "
              f"saw {src['acked']} acked")
        total += last
    stored = int(db.value("SELECT count(*) FROM feed_events"))
    check(stored == total, f"feed_events has {stored} rows, expected {total}")


def check_state(db, expect):
    """matches and incidents are what feedsim's reference model says, and
    match_updates holds every version of every match once."""
    want = expect["matches"]
    got = {}
    for mid, snapshot in db.query("SELECT id, snapshot FROM matches"):
        m = json.loads(snapshot)
        for k in ("version", "feed", "gap"):
            m.pop(k, None)
        got[mid] = m
    check(set(got) == set(want),
          f"matches: extra {sorted(set(got) - set(want))[:5]}, "
          f"missing {sorted(set(want) - set(got))[:5]}")
    for mid, m in want.items():
        check(got[mid] == m, f"{mid}: stored {got[mid]}\n  expected {m}")

    live = {}
    for row in db.query("SELECT match_id, incident_id, type, team, minute,"
                        " stoppage, player, assist, confirmed"
                        " FROM incidents WHERE NOT deleted"):
        mid, iid, typ, team, minute, stoppage, player, assist, conf = row
        inc = {"id": iid, "type": typ, "team": team, "player": player,
               "assist": assist,
               "minute": None if minute is None else int(minute),
               "stoppage": None if stoppage is None else int(stoppage),
               "confirmed": conf == "t"}
        live.setdefault(mid, {})[iid] = {k: v for k, v in inc.items()
                                         if v is not None}
    for mid, m in want.items():
        stored = live.get(mid, {})
        expected = {i["id"]: dict(i, confirmed=i.get("confirmed", False))
                    for i in m["incidents"]}
        check(stored == expected,
              f"{mid}: incidents {stored}\n  expected {expected}")

    # One statement, one snapshot: feed-state versions may still arrive.
    for mid, version, n, top in db.query(
            "SELECT m.id, m.version, count(u.version), max(u.version)"
            " FROM matches m LEFT JOIN match_updates u ON u.match_id = m.id"
            " GROUP BY m.id, m.version"):
        check(int(n) == int(top) == int(version),
              f"{mid}: version {version}, match_updates has {n} rows up "
              f"to {top}")


def wait_stored(db, events):
    wait_until(f"{events} events stored", lambda: int(db.value(
        "SELECT count(*) FROM feed_events")) > events, timeout=30)


def test_every_event_once_and_the_state_exact():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        expect = os.path.join(tmpdir("store"), "expect.json")
        stats = finish(feedsim(c, d, expect, "--sources", "3",
                               "--matches", "9", "--rate", "0",
                               "--events", "6000", "--multi", "0.3"))
        # 9 matches end before 6000 events: whatever was sent is acked.
        check(stats["complete"] and
              stats["events_acked"] == stats["events_sent"] > 3000,
              f"acked {stats['events_acked']} of {stats['events_sent']}")
        check_events(db, stats)
        check_state(db, load_expect(expect))
        check(d.readyz() == 200, "/readyz is not 200 with the database up")


def test_resend_after_reconnect_adds_no_row():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        expect = os.path.join(tmpdir("store"), "expect.json")
        stats = finish(feedsim(c, d, expect, "--sources", "2",
                               "--matches", "6", "--rate", "0",
                               "--events", "5000",
                               "--reconnect-after", "400"))
        check(stats["events_resent"] > 0,
              f"nothing was sent twice: {stats['events_resent']}")
        check(stats["connects"] > 2, f"connects {stats['connects']}")
        check_events(db, stats)
        check_state(db, load_expect(expect))


def test_database_stopped_mid_stream():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        expect = os.path.join(tmpdir("store"), "expect.json")
        fs = feedsim(c, d, expect, "--sources", "2", "--matches", "6",
                     "--rate", "1500", "--events", "9000")
        wait_stored(db, 500)
        db.stop("fast")
        wait_until("/readyz to say 503", lambda: d.readyz() == 503,
                   timeout=10)
        time.sleep(4)
        check(d.proc.alive(), "the daemon died with the database")
        db.start()
        stats = finish(fs)
        check_events(db, stats)
        check_state(db, load_expect(expect))
        log = d.log()
        check(log.count("database unreachable") == 1,
              f"{log.count('database unreachable')} 'unreachable' lines")
        check(log.count("database back") == 1,
              f"{log.count('database back')} 'back' lines")
        back = [ln for ln in log.splitlines() if "database back" in ln][0]
        ms = int(back.split("duration_ms=")[1].split()[0].strip('"'))
        check(ms >= 3000, f"outage of {ms} ms logged, it lasted over 4 s")
        wait_until("/readyz to say 200", lambda: d.readyz() == 200,
                   timeout=10)


def test_kill9_and_restart():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        expect = os.path.join(tmpdir("store"), "expect.json")
        fs = feedsim(c, d, expect, "--sources", "2", "--matches", "6",
                     "--rate", "2000", "--events", "12000")
        wait_stored(db, 2000)
        d.kill9()
        d.start()
        stats = finish(fs)
        check(stats["connects"] > 2, f"connects {stats['connects']}")
        check_events(db, stats)
        check_state(db, load_expect(expect))
        check("database loaded" in d.runs[-1].output(),
              "the restarted daemon did not load the database")


if __name__ == "__main__":
    run_tests([test_every_event_once_and_the_state_exact,
               test_resend_after_reconnect_adds_no_row,
               test_database_stopped_mid_stream,
               test_kill9_and_restart])
