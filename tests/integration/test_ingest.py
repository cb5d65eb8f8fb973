#!/usr/bin/env python3
"""tests/integration/test_ingest.py - the feed port of the real daemon over
real sockets, against a throwaway PostgreSQL: scorewire-feedsim gets every
event acknowledged through malformed documents, resets and split writes;
<error> replies and the ingest counters agree with what it sent; tokens,
heartbeats, the silence limit (stale, live, offline), replacement of a
connection by a new login, and a hostile peer beside a good feed.

Counters are read from the admin port's /metrics. The daemon must have the
ingest stage wired (its --help lists --silence-ms); until then the test
says so and passes without running.
"""

import functools
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

from harness import (Cleanup, Proc, check, free_port, port_open, program,
                     run_tests, tmpdir, wait_until)
from pgtemp import Cluster

SCOREWIRE = program("scorewire")
FEEDSIM = program("scorewire-feedsim")
DOC_LIMIT = 8192
SILENCE_MS = 1500
RUN_TIMEOUT = 180  # s: an upper bound for a hung run, never a figure


def ingest_is_wired():
    out = subprocess.run([SCOREWIRE, "--help"], capture_output=True, text=True,
                         timeout=10)
    return "--silence-ms" in out.stdout


class Daemon:
    """bin/scorewire on free ports with a tokens file, against @db."""

    def __init__(self, cleanup, db, tokens):
        self.feed_port = free_port()
        self.http_port = free_port()
        self.admin_port = free_port()
        self.proc = cleanup.add(Proc("ingest-daemon", [
            SCOREWIRE, "--db", db.conninfo, "--bind", "127.0.0.1",
            "--feed-port", str(self.feed_port),
            "--http-port", str(self.http_port),
            "--admin-port", str(self.admin_port),
            "--tokens", tokens, "--doc-limit", str(DOC_LIMIT),
            "--silence-ms", str(SILENCE_MS), "--window", "256"]))
        wait_until("the feed port", lambda: port_open(self.feed_port)
                   or not self.proc.alive(), timeout=60)
        check(self.proc.alive(), "daemon exited:\n" + self.proc.output())
        wait_until("/metrics", lambda: self.metrics() is not None, timeout=30)

    def metrics(self):
        """{(name, frozenset(labels)): value} from /metrics, or None."""
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.admin_port}/metrics",
                    timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return None
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)', line)
            if not m:
                continue
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                          m.group(2) or ""))
            out[(m.group(1), labels)] = float(m.group(3))
        return out

    def value(self, name, **labels):
        return (self.metrics() or {}).get(
            (name, frozenset(labels.items())), 0.0)

    def state(self, source):
        """The source's state per the gauges, or None."""
        for st in ("live", "stale", "offline"):
            if self.value("scorewire_ingest_source_state", source=source,
                          state=st) == 1:
                return st
        return None


def feedsim(daemon, *args, check_exit=True):
    cmd = [FEEDSIM, "--port", str(daemon.feed_port), "--sent", "none",
           "--max-doc", str(DOC_LIMIT)] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=RUN_TIMEOUT)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    stats = json.loads(lines[-1]) if lines else None
    if check_exit and p.returncode != 0:
        raise AssertionError(f"feedsim exited {p.returncode}: {p.stderr}")
    return p.returncode, stats, p.stderr


class Peer:
    """A raw SFP/1 connection."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode())

    def line(self, timeout=10):
        """The next reply line; '' at EOF or reset."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            check(left > 0, f"no reply within {timeout}s (have {self.buf!r})")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return ""
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self, timeout=10):
        """The next reply line that is not a heartbeat."""
        while True:
            line = self.line(timeout)
            if line != "<ct/>":
                return line

    def until_ack(self, seq, timeout=10):
        """Reads replies up to the ack that covers @seq (acks may be
        coalesced or come one by one)."""
        while True:
            line = self.reply(timeout)
            m = re.fullmatch(r'<ack seq="(\d+)"/>', line)
            check(m is not None, f"waiting for ack {seq}, got {line!r}")
            if int(m.group(1)) >= seq:
                return

    def is_closed(self, timeout=10):
        """True once the server has closed (after any replies)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.s.recv(4096):
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False

    def close(self):
        self.s.close()


def with_daemon(fn):
    """Runs @fn(daemon, db, feed_tokens) against a fresh database and
    daemon."""
    @functools.wraps(fn)
    def run():
        tmp = tmpdir("ingest")
        tokens = os.path.join(tmp, "tokens")
        with open(tokens, "w") as f:
            f.write("# source token\nfeed-1 one\nfeed-2 two\nraw-1 r\n")
        os.chmod(tokens, 0o600)
        feed_tokens = os.path.join(tmp, "feed-tokens")
        with open(feed_tokens, "w") as f:
            f.write("feed-1 one\nfeed-2 two\n")
        try:
            with Cluster() as db, Cleanup() as c:
                fn(Daemon(c, db, tokens), db, feed_tokens)
        finally:
            for name in os.listdir(tmp):
                os.unlink(os.path.join(tmp, name))
            os.rmdir(tmp)
    return run


# ---- the tests --------------------------------------------------------------

@with_daemon
def test_acks_errors_and_counters(d, db, feed_tokens):
    before = d.metrics()
    rc, st, err = feedsim(d, "--tokens", feed_tokens, "--sources", "2",
                          "--matches", "8", "--events", "3000", "--rate", "0",
                          "--bad-rate", "0.1", "--split", "700",
                          "--reconnect-after", "800", "--seed", "7")
    check(st["complete"] and st["unacked"] == 0, f"incomplete: {st}")

    def delta(name, **labels):
        key = (name, frozenset(labels.items()))
        return d.value(name, **labels) - before.get(key, 0.0)

    # every event accepted exactly once, whatever was resent
    check(delta("scorewire_ingest_events_total") == st["events_sent"],
          f"events {delta('scorewire_ingest_events_total')} vs "
          f"{st['events_sent']}")
    rows = int(db.value("SELECT count(*) FROM feed_events"))
    check(rows == st["events_sent"], f"feed_events {rows}")
    for name, s in st["sources"].items():
        acked = int(db.value("SELECT acked_seq FROM source_offsets WHERE "
                             f"source = '{name}'"))
        check(acked == s["acked"] and s["last_event_seq"] <= acked
              <= s["last_seq"], f"{name}: offset {acked}, feedsim {s}")
    # each <error> feedsim read was counted (resets lose some replies,
    # never a count); documents of every kind were framed
    for reason, n in st["errors"].items():
        got = delta("scorewire_ingest_rejected_total", reason=reason)
        check(got >= n, f"{reason}: counted {got}, feedsim read {n}")
        check(got <= st["malformed"].get(reason, 0) + st["malformed_resent"],
              f"{reason}: counted {got}, more than sent")
    for reason in ("bad_attribute", "bad_element", "missing_seq",
                   "not_well_formed", "too_large"):
        check(st["malformed"][reason] == 0 or
              delta("scorewire_ingest_rejected_total", reason=reason) > 0,
              f"no {reason} counted")
    if st["malformed"]["junk"]:
        check(delta("scorewire_ingest_junk_bytes_total") > 0, "no junk")
    check(delta("scorewire_ingest_documents_total") >= st["events_sent"],
          "documents")
    check(delta("scorewire_ingest_bytes_total") > 0, "bytes")
    rejected = int(db.value("SELECT count(*) FROM rejected_documents"))
    check(rejected > 0, "no dead letters stored")
    # the feed has gone: its sources are offline
    for name in st["sources"]:
        wait_until(f"{name} offline", lambda: d.state(name) == "offline")

    # a second run resumes from the acked seq: nothing is taken twice
    rc, st2, err = feedsim(d, "--tokens", feed_tokens, "--sources", "2",
                           "--matches", "8", "--events", "500", "--rate", "0",
                           "--seed", "8")
    rows2 = int(db.value("SELECT count(*) FROM feed_events"))
    check(rows2 == rows + st2["events_sent"], f"feed_events {rows2}")


@with_daemon
def test_tokens(d, db, feed_tokens):
    rc, st, err = feedsim(d, "--token", "wrong", "--events", "10",
                          check_exit=False)
    check(rc == 1 and "login refused: unauthenticated" in err,
          f"exit {rc}: {err}")
    p = Peer(d.feed_port)
    p.send('<login source="raw-1" token="r" version="2"/>')
    check(p.reply() == '<login result="invalid" reason="unsupported_version"/>',
          "version")
    check(p.is_closed(), "not closed after a refused login")
    p = Peer(d.feed_port)
    p.send('<event seq="1" source="raw-1"/>')
    check(p.reply() == '<error seq="1" reason="unauthenticated"/>',
          "an event before login")
    check(p.is_closed(), "not closed after an unauthenticated event")


@with_daemon
def test_session_heartbeat_silence_replacement(d, db, feed_tokens):
    a = Peer(d.feed_port)
    a.send('<login source="raw-1" token="r" version="1"/>')
    check(a.reply() == '<login result="valid" source="raw-1" acked="0"/>',
          "login")
    wait_until("live", lambda: d.state("raw-1") == "live")
    # silent past the limit: stale; a heartbeat from it: live
    wait_until("stale", lambda: d.state("raw-1") == "stale", timeout=10)
    a.send("<ct/>")
    wait_until("live again", lambda: d.state("raw-1") == "live")
    # the server's own heartbeat, 5 s after its last output
    check(a.line(timeout=8) == "<ct/>", "no heartbeat")
    a.send('<event seq="1"><match id="raw:1"><score home="1" away="0"/>'
           '</match></event><event seq="2" sent="soon"/>')
    check(a.reply() == '<error seq="2" reason="bad_attribute"/>', "error")
    a.until_ack(2)  # the event and the rejection that used up its seq
    # a new login of the same source replaces this connection
    b = Peer(d.feed_port)
    b.send('<login source="raw-1" token="r" version="1"/>')
    check(b.reply() == '<login result="valid" source="raw-1" acked="2"/>',
          "second login")
    check(a.reply() == '<error reason="replaced"/>', "not told")
    check(a.is_closed(), "old connection not closed")
    dups = d.value("scorewire_ingest_duplicates_total")
    b.send('<event seq="2"/>')  # a duplicate, durable: acked again
    b.until_ack(2)
    check(d.value("scorewire_ingest_duplicates_total") == dups + 1, "dups")
    b.close()
    wait_until("offline", lambda: d.state("raw-1") == "offline")


@with_daemon
def test_hostile_peer_beside_a_feed(d, db, feed_tokens):
    feed = subprocess.Popen(
        [FEEDSIM, "--port", str(d.feed_port), "--tokens", feed_tokens,
         "--sources", "2", "--matches", "4", "--events", "2000",
         "--rate", "2000", "--sent", "none", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        junk = d.value("scorewire_ingest_junk_bytes_total")
        large = d.value("scorewire_ingest_rejected_total", reason="too_large")
        bad = Peer(d.feed_port)
        bad.send("\x01\x02 junk <login source=\"raw-1\" token=\"r\"/>")
        check(bad.reply().startswith('<login result="valid"'), "bad login")
        check(d.value("scorewire_ingest_junk_bytes_total") == junk + 6,
              "junk not counted")
        bad.send('<event seq="1"><match id="m">')
        try:
            for _ in range(4 * DOC_LIMIT // 1024 + 8):
                bad.send("x" * 1024)  # a runaway: past 4x the limit
        except OSError:
            pass  # cut off while still sending
        # the reply, unless the reset of the close overtook it
        check(bad.reply() in ('<error reason="too_large"/>', ""),
              "runaway reply")
        check(bad.is_closed(), "runaway peer not closed")
        check(d.value("scorewire_ingest_rejected_total", reason="too_large")
              == large + 1, "runaway not counted")
        out, err = feed.communicate(timeout=RUN_TIMEOUT)
    finally:
        if feed.poll() is None:
            feed.kill()
            feed.wait()
    check(feed.returncode == 0, f"feed disturbed: {err}")
    st = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    check(st["complete"], f"feed incomplete: {st}")


if __name__ == "__main__":
    if not ingest_is_wired():
        print("SKIP test_ingest: the daemon does not wire the ingest stage "
              "yet (no --silence-ms in --help)")
        sys.exit(0)
    run_tests([test_acks_errors_and_counters, test_tokens,
               test_session_heartbeat_silence_replacement,
               test_hostile_peer_beside_a_feed])
