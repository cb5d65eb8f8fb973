#!/usr/bin/env python3
"""tests/integration/test_drain.py - the orderly stop: SIGTERM while
scorewire-feedsim streams into the real daemon, with a throwaway PostgreSQL
and WebSocket clients watching.

What "received before the signal" means here, seen from outside: the
daemon stops reading at the signal, so what it had read is what it acks.
After the drain every event feedsim saw acked is in feed_events, once, and
nothing else is there (feed_events never holds a row above its source's
acked seq), and source_offsets equals what feedsim saw acked: the last ack
of each source reached it. feedsim had sent more than that (its window was
in flight): the daemon left it unread, for feedsim to resend later.
"""

import json
import os
import signal
import threading
import time

from harness import (Cleanup, Proc, check, port_open, run_tests, tmpdir,
                     wait_until)
from pgtemp import Cluster
from test_store import Daemon as StoreDaemon
from test_store import (check_events, check_state, feedsim, finish,
                        load_expect, wait_stored)
from wsclient import Closed, WsClient

DRAIN_MS = 10000  # the daemon's --drain-ms: the bound on a clean stop
SHORT_DRAIN_MS = 3000  # where the drain cannot complete (database down)
SHUTDOWN_S = 10  # the tree's stop after the drain (it takes well under 1 s)
# feedsim keeps more in flight (--window) than a connection of the daemon
# takes before it stops reading (its --window): at the signal, part of what
# feedsim sent is in the kernel, unread, and part inside the daemon.
DAEMON_WINDOW = 256
LOAD = ["--sources", "3", "--matches", "24", "--rate", "0",
        "--events", "100000000", "--window", "4000"]


class Daemon(StoreDaemon):
    """test_store's daemon with a drain bound; started once its feed port is
    open (the store has loaded then), since "scorewire started" is logged
    before the deferred stages are up."""

    def __init__(self, cleanup, conninfo, drain_ms=DRAIN_MS, extra=()):
        self.drain_ms = drain_ms
        self.extra = list(extra)
        super().__init__(cleanup, conninfo)

    def start(self):
        argv = self.argv + ["--drain-ms", str(self.drain_ms),
                            "--window", str(DAEMON_WINDOW)] + self.extra
        p = self.cleanup.add(Proc(f"{self.name}{len(self.runs)}", argv))
        self.runs.append(p)
        wait_until("the feed port",
                   lambda: port_open(self.feed_port) or not p.alive(),
                   timeout=30)
        check(p.alive(), f"the daemon exited: {p.output()[-2000:]}")

    def sigterm(self):
        """Sends SIGTERM; returns the exit status and the seconds it took."""
        start = time.monotonic()
        self.proc.signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=self.drain_ms / 1000 + SHUTDOWN_S + 30)
        return rc, time.monotonic() - start


class Watcher(threading.Thread):
    """A WebSocket client subscribed to every match that reads until the
    server closes: .code is the close code it got, None when the
    connection ended without a close frame."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.ws = WsClient(port)
        self.ws.send_json({"op": "subscribe", "matches": "*"})
        self.frames = 0
        self.code = "still open"
        self.start()

    def run(self):
        try:
            while True:
                try:
                    self.ws.recv_text(timeout=60)
                    self.frames += 1
                except TimeoutError:
                    continue
        except Closed as e:
            self.code = e.code
        except OSError:
            self.code = None

    def close_code(self):
        self.join(timeout=15)
        self.ws.sock.close()
        return self.code


def start_feedsim(cleanup, daemon, *args):
    expect = os.path.join(tmpdir("drain"), "expect.json")
    return feedsim(cleanup, daemon, expect, *(LOAD + list(args)))


def stop_feedsim(proc):
    """Stops feedsim (it retries a daemon that is gone); returns its stats."""
    proc.signal(signal.SIGINT)
    proc.wait(timeout=30)
    lines = [ln for ln in proc.output().splitlines()
             if ln.startswith('{"complete"')]
    check(lines, f"feedsim printed no stats: {proc.output()[-2000:]}")
    return json.loads(lines[-1])


def stored(db, source):
    """(rows, lowest seq, highest seq, acked_seq) of @source."""
    n, lo, hi = db.query(
        "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0)"
        f" FROM feed_events WHERE source = '{source}'")[0]
    acked = db.value("SELECT coalesce((SELECT acked_seq FROM source_offsets"
                     f" WHERE source = '{source}'), 0)")
    return int(n), int(lo), int(hi), int(acked)


def check_durable_prefix(db, name):
    """feed_events holds seq 1..acked_seq of @name, each once, nothing
    above. Returns acked_seq."""
    n, lo, hi, acked = stored(db, name)
    check((n, lo, hi) == (acked, 1 if acked else 0, acked),
          f"{name}: feed_events holds {n} rows, seq {lo}..{hi}; "
          f"source_offsets says {acked}")
    return acked


def test_sigterm_under_load():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        fs = start_feedsim(c, d)
        wait_stored(db, 3000)
        rc, took = d.sigterm()
        stats = stop_feedsim(fs)
        log = d.log()
        check(rc == 0, f"exit {rc}: {log[-3000:]}")
        check(took < DRAIN_MS / 1000,
              f"stopped in {took:.1f} s, the drain bound is "
              f"{DRAIN_MS / 1000:.0f} s")
        check("msg=drained" in log, "no drained line")
        drained = [ln for ln in log.splitlines()
                   if "feed connection closed" in ln and "reason=drained" in ln]
        check(len(drained) == 3, f"{len(drained)} feed connections drained")
        check(all("unacked=0" in ln for ln in drained),
              f"a drained connection left events unacked: {drained}")
        in_flight = 0
        for name, src in stats["sources"].items():
            acked = check_durable_prefix(db, name)
            check(acked > 0, f"{name}: nothing stored")
            check(src["acked"] == acked,
                  f"{name}: feedsim saw {src['acked']} acked, the database "
                  f"holds 1..{acked}: the last ack did not reach it")
            in_flight += src["last_seq"] - acked
        check(in_flight > 0, "feedsim had nothing in flight: not mid-stream")
        print(f"     stopped in {took:.2f} s; {in_flight} events feedsim "
              "had in flight were left unread", flush=True)


def test_websocket_clients_get_1001():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        watchers = [Watcher(d.http_port) for _ in range(2)]
        fs = start_feedsim(c, d, "--rate", "500")
        wait_until("updates on the WebSocket clients",
                   lambda: all(w.frames > 10 for w in watchers), timeout=30)
        rc, _ = d.sigterm()
        stop_feedsim(fs)
        check(rc == 0, f"exit {rc}")
        codes = [w.close_code() for w in watchers]
        check(codes == [1001, 1001],
              f"WebSocket close codes {codes}, expected 1001 (going away); "
              "None: closed without a close frame")


def test_drain_with_the_database_down():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo, SHORT_DRAIN_MS)
        fs = start_feedsim(c, d, "--rate", "2000")
        wait_stored(db, 1000)
        db.stop("fast")
        wait_until("/readyz to say 503", lambda: d.readyz() == 503,
                   timeout=10)
        time.sleep(1)  # events accepted, none durable
        rc, took = d.sigterm()
        stats = stop_feedsim(fs)
        log = d.log()
        limit = SHORT_DRAIN_MS / 1000
        check(rc == 1, f"exit {rc}; an incomplete drain exits 1")
        check(limit - 0.1 <= took < limit + SHUTDOWN_S,
              f"stopped in {took:.1f} s with a drain bound of {limit:.0f} s")
        check("drain deadline passed" in log, "no deadline line")
        for name in stats["sources"]:
            check(f'msg="source stopped with events not acked" source={name} '
                  in log, f"{name}: what was not acked is not logged")
        db.start()
        for name, src in stats["sources"].items():
            acked = check_durable_prefix(db, name)
            check(src["acked"] <= acked,
                  f"{name}: feedsim saw {src['acked']} acked, only "
                  f"{acked} is durable")
            check(src["last_seq"] > acked,
                  f"{name}: everything was made durable with the database "
                  "down?")


def test_stop_with_the_backlog_full():
    """The database down long enough for the store's backlog to reach its
    bound: the store leaves its mailbox alone then (the feeds are held
    back), and a stop must still reach it. It used to sleep through the
    shutdown and the kill, and the tree gave up on it ("child store did not
    stop") some 20 s later."""
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo, SHORT_DRAIN_MS, ["--store-backlog", "500"])
        fs = start_feedsim(c, d, "--rate", "2000")
        wait_stored(db, 500)
        db.stop("fast")
        wait_until("the store to hold the feeds back",
                   lambda: "backlog full: feeds held back" in d.log(),
                   timeout=30)
        time.sleep(1)  # asleep until its next attempt
        rc, took = d.sigterm()
        stop_feedsim(fs)
        log = d.log()
        limit = SHORT_DRAIN_MS / 1000
        check(rc == 1, f"exit {rc}; an incomplete drain exits 1")
        for line in ("missed its shutdown timeout", "did not stop"):
            check(line not in log, f"the store ignored the stop: {line}")
        check(took < limit + SHUTDOWN_S,
              f"stopped in {took:.1f} s with a drain bound of {limit:.0f} s")
        print(f"     stopped in {took:.2f} s", flush=True)


def test_stop_past_the_drain_then_restart():
    """SIGTERM with no time to drain (--drain-ms 0), feedsim at full speed,
    three times: the tree stops with events read and not acked. The
    store's last batch keeps the model's work but not those events nor
    their offsets (an element ingest could not route comes back lost at a
    stop, which completes its event: stored, the next login would skip it
    though its change was never applied). After each restart feedsim
    sends them again, the model skips by msgnr what it had applied, and in
    the end every event is stored once and the state is exact."""
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo, 0)
        expect = os.path.join(tmpdir("drain"), "expect.json")
        fs = feedsim(c, d, expect, "--sources", "3", "--matches", "60",
                     "--rate", "0", "--events", "40000", "--window", "4000")
        # A stop can find everything acked at the instant it looks; three
        # stops make one with events in flight all but certain.
        cut_short = 0
        for k in range(3):
            wait_stored(db, 2000 * (k + 1))
            rc, _ = d.sigterm()
            check(rc in (0, 1), f"exit {rc}")
            cut_short += rc == 1
            d.start()
        check(cut_short > 0, "no stop was cut short of its drain")
        stats = finish(fs)
        check_events(db, stats)
        check_state(db, load_expect(expect))


def test_second_signal_exits_at_once():
    with Cluster() as db, Cleanup() as c:
        d = Daemon(c, db.conninfo)
        fs = start_feedsim(c, d, "--rate", "2000")
        wait_stored(db, 500)
        db.stop("fast")
        wait_until("/readyz to say 503", lambda: d.readyz() == 503,
                   timeout=10)
        time.sleep(0.5)
        d.proc.signal(signal.SIGTERM)
        wait_until("the drain", lambda: "msg=draining" in d.log(), timeout=5)
        rc, took = d.sigterm()
        stop_feedsim(fs)
        check(rc == 1, f"exit {rc} after a second signal")
        check(took < 2, f"{took:.1f} s after the second signal")
        check("second signal: exiting now" in d.log(), "no line for it")


if __name__ == "__main__":
    run_tests([test_sigterm_under_load, test_websocket_clients_get_1001,
               test_drain_with_the_database_down,
               test_stop_with_the_backlog_full,
               test_stop_past_the_drain_then_restart,
               test_second_signal_exits_at_once])
