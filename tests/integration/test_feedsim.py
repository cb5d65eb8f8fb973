#!/usr/bin/env python3
"""tests/integration/test_feedsim.py - scorewire-feedsim against a fake SFP/1
server over real sockets: login and tokens, resending from acked + 1 after a
drop, cumulative and withheld acks, --split, --no-login, malformed documents,
several sources, heartbeats and SIGTERM.

The fake server frames the stream itself, validates each event by
feed-protocol.md section 3, and applies the accepted ones to a model of its
own, written here from the spec. Its final state must equal what feedsim's
--expect says: two independent implementations of the same rules.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

BIN = os.environ.get("SCOREWIRE_BIN", "bin")
FEEDSIM = os.path.join(BIN, "scorewire-feedsim")
RUN_TIMEOUT = 120  # s: an upper bound for a hung run, never a figure

SEQ_RE = re.compile(rb'^<event\b[^>]*?\sseq="([^"]*)"')
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
CLOCK = re.compile(r"^\d{2,}:[0-5]\d$")
TEAMS = ("home", "away")
ACTIONS = ("insert", "update", "delete")


class Reject(Exception):
    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def non_negative(text):
    if text is None or not text.isdigit():
        raise Reject("bad_attribute")
    return int(text)


def validate(root):
    """Checks an <event> by section 3; raises Reject(reason)."""
    sent = root.get("sent")
    if sent is not None and not RFC3339.match(sent):
        raise Reject("bad_attribute")
    for m in root:
        if m.tag != "match":
            continue
        mid = m.get("id")
        if mid is None or len(mid.encode()) > 64:
            raise Reject("bad_attribute")
        if m.get("msgnr") is not None:
            non_negative(m.get("msgnr"))
        if m.get("feedtype", "delta") not in ("full", "delta"):
            raise Reject("bad_attribute")
        seen = set()
        for c in m:
            if c.tag != "incident":
                if c.tag in seen:
                    raise Reject("bad_element")
                seen.add(c.tag)
            if c.tag == "clock":
                if c.get("time") is not None and not CLOCK.match(c.get("time")):
                    raise Reject("bad_attribute")
                if c.get("running") not in (None, "0", "1"):
                    raise Reject("bad_attribute")
            elif c.tag == "score":
                non_negative(c.get("home"))
                non_negative(c.get("away"))
            elif c.tag == "incident":
                if c.get("id") is None:
                    raise Reject("bad_attribute")
                if c.get("team") not in (None,) + TEAMS:
                    raise Reject("bad_attribute")
                if c.get("confirmed") not in (None, "0", "1"):
                    raise Reject("bad_attribute")
                if c.get("action", "insert") not in ACTIONS:
                    raise Reject("bad_attribute")
                for k in ("minute", "stoppage"):
                    if c.get(k) is not None:
                        non_negative(c.get(k))


INCIDENT_KEYS = ("type", "team", "minute", "stoppage", "player", "assist",
                 "confirmed")


def incident_value(k, v):
    if k in ("minute", "stoppage"):
        return int(v)
    if k == "confirmed":
        return v == "1"
    return v


class Model:
    """SFP/1 section 3, applied to accepted match elements."""

    def __init__(self):
        self.matches = {}
        self.msgnr = {}

    def apply(self, m):
        mid = m.get("id")
        x = self.matches.setdefault(mid, {"id": mid, "incidents": []})
        if m.get("msgnr") is not None:
            n = int(m.get("msgnr"))
            if mid in self.msgnr and n <= self.msgnr[mid]:
                return
            self.msgnr[mid] = n
        if m.get("feedtype") == "full":
            for k in ("fixture", "status", "clock", "score"):
                x.pop(k, None)
            x["incidents"] = []
        for c in m:
            if c.tag == "fixture":
                f = x.setdefault("fixture", {})
                for k in ("sport", "competition", "home", "away", "start"):
                    if c.get(k) is not None:
                        f[k] = c.get(k)
            elif c.tag == "status":
                s = x.setdefault("status", {})
                if c.get("phase") is not None:
                    s["phase"] = c.get("phase")
            elif c.tag == "clock":
                k = x.setdefault("clock", {})
                if c.get("time") is not None:
                    k["time"] = c.get("time")
                if c.get("running") is not None:
                    k["running"] = c.get("running") == "1"
            elif c.tag == "score":
                x["score"] = {"home": int(c.get("home")),
                              "away": int(c.get("away"))}
            elif c.tag == "incident":
                self.incident(x, c)

    @staticmethod
    def incident(x, c):
        iid = c.get("id")
        action = c.get("action", "insert")
        incs = x["incidents"]
        at = next((i for i, v in enumerate(incs) if v["id"] == iid), None)
        if action == "delete":
            if at is not None:
                del incs[at]
            return
        given = {k: incident_value(k, c.get(k)) for k in INCIDENT_KEYS
                 if c.get(k) is not None}
        if at is None:
            incs.append(dict(id=iid, **given))
        elif action == "insert":
            incs[at] = dict(id=iid, **given)
        else:
            incs[at].update(given)


def frame(buf, max_doc):
    """Frames documents back to back the way section 1 describes: a
    depth-counting framer that honours quotes, declarations and comments.
    Returns ([(kind, bytes)], rest) with kind 'doc', 'junk' (bytes before a
    '<') or 'too_large', and rest the bytes of an unfinished document."""
    out = []
    i = 0
    n = len(buf)
    while True:
        j = buf.find(b"<", i)
        gap = buf[i:] if j < 0 else buf[i:j]
        if gap.strip():
            out.append(("junk", gap.strip()))
        if j < 0:
            return out, b""
        if buf.startswith(b"<?", j):
            k = buf.find(b"?>", j)
            if k < 0:
                return out, buf[j:]
            i = k + 2
            continue
        depth = 0
        p = j
        end = None
        while p < n:
            q = buf.find(b"<", p)
            if q < 0 or q + 1 >= n:
                break
            if buf.startswith(b"</", q):
                g = buf.find(b">", q)
                if g < 0:
                    break
                depth -= 1
                p = g + 1
            elif buf.startswith(b"<!--", q):
                g = buf.find(b"-->", q)
                if g < 0:
                    break
                p = g + 3
                continue
            else:
                r = q + 1
                quote = None
                while r < n:
                    ch = buf[r:r + 1]
                    if quote:
                        if ch == quote:
                            quote = None
                    elif ch in (b'"', b"'"):
                        quote = ch
                    elif ch == b">":
                        break
                    r += 1
                if r >= n:
                    break
                if buf[r - 1:r] != b"/":
                    depth += 1
                p = r + 1
            if depth == 0:
                end = p
                break
        if end is None:
            return out, buf[j:]
        doc = buf[j:end]
        out.append(("too_large" if len(doc) > max_doc else "doc", doc))
        i = end


class Conn:
    def __init__(self):
        self.source = None
        self.login = None      # the login element's attributes
        self.first_seq = None  # first event seq on this connection
        self.reads = 0
        self.raw = bytearray()
        self.events = 0        # events received on it


class FakeServer:
    """A small SFP/1 server. Policies:
    tokens       {source: token} or None (no tokens configured)
    ack_every    ack after every Nth accepted or rejected-with-seq event
    hold_from    never acknowledge seqs >= this (withheld acks)
    crash        (after_events, durable_upto): on the first connection,
                 after that many events, forget everything above
                 durable_upto and close abruptly
    """

    def __init__(self, tokens=None, ack_every=1, hold_from=None, crash=None,
                 max_doc=1 << 20):
        self.tokens = tokens
        self.ack_every = ack_every
        self.hold_from = hold_from
        self.crash = crash
        self.max_doc = max_doc
        self.lock = threading.Lock()
        self.model = Model()
        self.last_seq = {}     # source -> highest seq seen (durable here)
        self.accepted = {}     # source -> [seq]
        self.errors = {}       # reason -> count sent
        self.junk = 0
        self.cts = 0
        self.conns = []
        self.match_source = {}  # match id -> source
        self.docs = {}          # source -> {seq: accepted document}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closing = False
        self.crashed = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self):
        self.closing = True
        try:
            self.sock.close()
        except OSError:
            pass

    def accept_loop(self):
        while not self.closing:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def acked(self, source):
        seq = self.last_seq.get(source, 0)
        if self.hold_from is not None:
            seq = min(seq, self.hold_from - 1)
        if self.crash and not self.crashed:
            seq = min(seq, self.crash[1])  # only that much is durable
        return seq

    def serve(self, s):
        c = Conn()
        with self.lock:
            self.conns.append(c)
        buf = b""
        since_ack = 0
        s.settimeout(0.5)
        idle = 0
        try:
            while not self.closing:
                try:
                    data = s.recv(65536)
                except socket.timeout:
                    idle += 1
                    if c.source and idle >= 2:
                        s.sendall(b"<ct/>")
                        with self.lock:
                            s.sendall(b'<ack seq="%d"/>' % self.acked(c.source))
                        idle = 0
                    continue
                idle = 0
                if not data:
                    return
                c.reads += 1
                c.raw += data
                buf += data
                pieces, buf = frame(buf, self.max_doc)
                for kind, doc in pieces:
                    reply, close = self.handle(c, kind, doc)
                    if reply is not None and reply != b"":
                        if reply.startswith(b"<ack"):
                            since_ack += 1
                            if since_ack % self.ack_every != 0:
                                reply = None
                        if reply:
                            s.sendall(reply)
                    if close:
                        s.shutdown(socket.SHUT_RDWR)
                        return
        except OSError:
            return
        finally:
            s.close()

    def error(self, reason, seq=None):
        self.errors[reason] = self.errors.get(reason, 0) + 1
        if seq is None:
            return b'<error reason="%s"/>' % reason.encode()
        return b'<error seq="%d" reason="%s"/>' % (seq, reason.encode())

    def handle(self, c, kind, doc):
        """Returns (reply bytes or None, close?)."""
        with self.lock:
            if kind == "junk":
                self.junk += 1
                return None, False
            if kind == "too_large":
                return self.error("too_large"), False
            try:
                root = ET.fromstring(doc)
            except ET.ParseError:
                return self.error("not_well_formed"), False
            if root.tag == "ct":
                self.cts += 1
                return None, False
            if root.tag == "login":
                return self.on_login(c, root)
            if root.tag != "event":
                return None, False
            if c.source is None:
                if self.tokens is not None or root.get("source") is None:
                    return self.error("unauthenticated"), True
                c.source = root.get("source")
            seq_text = root.get("seq")
            if seq_text is None or not seq_text.isdigit() or int(seq_text) < 1:
                return self.error("missing_seq"), False
            seq = int(seq_text)
            c.events += 1
            if c.first_seq is None:
                c.first_seq = seq
            src = c.source
            if seq <= self.last_seq.get(src, 0):
                return b'<ack seq="%d"/>' % self.acked(src), False
            if self.crash and not self.crashed and c.events > self.crash[0]:
                # The crash: forget what was not durable, drop the line.
                self.crashed = True
                self.last_seq[src] = self.crash[1]
                self.accepted[src] = [q for q in self.accepted.get(src, [])
                                      if q <= self.crash[1]]
                self.model = self.replay(src)
                return None, True
            try:
                validate(root)
            except Reject as e:
                self.last_seq[src] = seq  # content rejections use the seq
                return self.error(e.reason, seq) + \
                    b'<ack seq="%d"/>' % self.acked(src), False
            self.last_seq[src] = seq
            self.accepted.setdefault(src, []).append(seq)
            self.docs.setdefault(src, {})[seq] = doc
            for m in root:
                if m.tag == "match":
                    self.match_source.setdefault(m.get("id"), src)
                    self.model.apply(m)
            return b'<ack seq="%d"/>' % self.acked(src), False

    def replay(self, src):
        """Rebuilds the model from the durable documents only."""
        model = Model()
        for source in sorted(self.docs):
            for seq in sorted(self.docs[source]):
                if source == src and seq > self.last_seq[src]:
                    continue
                for m in ET.fromstring(self.docs[source][seq]):
                    if m.tag == "match":
                        model.apply(m)
        self.docs[src] = {q: d for q, d in self.docs[src].items()
                          if q <= self.last_seq[src]}
        return model

    def on_login(self, c, root):
        src = root.get("source")
        c.login = dict(root.attrib)
        if root.get("version") != "1":
            return b'<login result="invalid" reason="unsupported_version"/>', True
        if self.tokens is not None and self.tokens.get(src) != root.get("token"):
            return b'<login result="invalid" reason="unauthenticated"/>', True
        c.source = src
        return (b'<login result="valid" source="%s" acked="%d"/>'
                % (src.encode(), self.acked(src))), False


def start_server(**kw):
    return FakeServer(**kw)


def run_feedsim(srv, *args, expect=True, timeout=RUN_TIMEOUT, check=True):
    with tempfile.TemporaryDirectory(prefix="feedsim-test-") as tmp:
        exp = os.path.join(tmp, "expect.json")
        cmd = [FEEDSIM, "--port", str(srv.port), "--sent", "sim"] + list(args)
        if expect:
            cmd += ["--expect", exp]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        expected = None
        if expect and os.path.exists(exp):
            with open(exp) as f:
                expected = json.load(f)
    out = p.stdout.decode()
    err = p.stderr.decode()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    stats = json.loads(lines[-1]) if lines else None
    if check and p.returncode != 0:
        raise AssertionError("feedsim exited %d: %s" % (p.returncode, err))
    return p.returncode, stats, expected, err


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def same_state(srv, expected):
    got = srv.model.matches
    exp = expected["matches"]
    check(set(got) == set(exp),
          "match ids differ: %s vs %s" % (sorted(got), sorted(exp)))
    for mid in exp:
        if got[mid] != exp[mid]:
            raise AssertionError("match %s differs:\nserver  %s\nfeedsim %s"
                                 % (mid, json.dumps(got[mid], sort_keys=True),
                                    json.dumps(exp[mid], sort_keys=True)))


# ---- the tests ------------------------------------------------------------

def test_login_and_state():
    srv = start_server(tokens={"feed-1": "s3cr&t"})
    try:
        rc, st, exp, _ = run_feedsim(srv, "--matches", "4", "--rate", "0",
                                     "--seed", "7", "--tick", "30",
                                     "--token", "s3cr&t")
        check(srv.conns[0].login == {"source": "feed-1", "token": "s3cr&t",
                                     "version": "1"},
              "login attributes: %r" % srv.conns[0].login)
        check(st["complete"] and st["unacked"] == 0, "incomplete: %r" % st)
        check(st["matches_ended"] == 4, "not every match ended")
        accepted = srv.accepted["feed-1"]
        check(st["events_sent"] == len(accepted),
              "sent %d, server accepted %d" % (st["events_sent"], len(accepted)))
        check(accepted == list(range(1, len(accepted) + 1)),
              "seqs are not 1..n in order")
        check(st["sources"]["feed-1"]["acked"] == accepted[-1], "last ack")
        check(exp["sources"]["feed-1"]["last_event_seq"] == accepted[-1],
              "expect's last_event_seq")
        same_state(srv, exp)
        for m in exp["matches"].values():
            check(m["status"]["phase"] == "ended", "a match did not end")
            check(m["clock"]["running"] is False, "clock still running")
            goals = {"home": 0, "away": 0}
            for inc in m["incidents"]:
                if inc["type"] in ("goal", "penalty_goal", "own_goal"):
                    goals[inc["team"]] += 1
                    check(inc["confirmed"] is True, "unconfirmed goal at the end")
            check(goals == m["score"], "score %r is not the goals %r"
                  % (m["score"], goals))
            ids = [i["id"] for i in m["incidents"]]
            check(len(ids) == len(set(ids)), "incident ids repeat")
    finally:
        srv.close()


def test_wrong_token():
    srv = start_server(tokens={"feed-1": "right"})
    try:
        rc, st, _, err = run_feedsim(srv, "--matches", "1", "--rate", "0",
                                     "--token", "wrong", check=False)
        check(rc == 1, "exit %d with a wrong token" % rc)
        check("login refused: unauthenticated" in err, "stderr: " + err)
        check(not st["complete"], "complete with a refused login")
    finally:
        srv.close()


def test_resend_after_crash():
    # The server takes 60 events, has made only the first 20 durable when
    # it "crashes", and tells so at the next login: feedsim resends 21...
    srv = start_server(crash=(60, 20))
    try:
        rc, st, exp, _ = run_feedsim(srv, "--matches", "3", "--rate", "0",
                                     "--seed", "11", "--tick", "60",
                                     "--window", "100")
        check(len(srv.conns) >= 2, "no reconnect after the crash")
        check(srv.conns[1].first_seq == 21,
              "resumed at %r, not acked + 1 = 21" % srv.conns[1].first_seq)
        check(st["events_resent"] >= 40, "resent only %d" % st["events_resent"])
        accepted = srv.accepted["feed-1"]
        check(accepted == list(range(1, len(accepted) + 1)),
              "a seq was lost or repeated across the crash")
        same_state(srv, exp)
    finally:
        srv.close()


def test_forced_reconnects_and_coalesced_acks():
    srv = start_server(ack_every=7)
    try:
        rc, st, exp, _ = run_feedsim(srv, "--matches", "2", "--rate", "0",
                                     "--seed", "5", "--tick", "60",
                                     "--reconnect-after", "25")
        logins = [c for c in srv.conns if c.login]
        check(len(logins) >= 4, "only %d connections" % len(logins))
        check(st["connects"] == len(logins), "connects %d vs %d logins"
              % (st["connects"], len(logins)))
        check(st["complete"], "incomplete")
        same_state(srv, exp)
    finally:
        srv.close()


def test_withheld_acks_fail():
    srv = start_server(hold_from=30)
    try:
        rc, st, _, err = run_feedsim(srv, "--matches", "1", "--rate", "0",
                                     "--events", "40", "--ack-timeout", "1",
                                     check=False)
        check(rc == 1, "exit %d with acks withheld" % rc)
        check("timed out waiting for acks; 11 documents unacknowledged "
              "(feed-1: acked 29, sent up to 40)" in err, "stderr: " + err)
        check(st["unacked"] == 11, "unacked %r, want 11" % st["unacked"])
        check(st["sources"]["feed-1"]["acked"] == 29, "acked %r"
              % st["sources"]["feed-1"]["acked"])
        check(st["events_sent"] == 40, "--events 40 sent %d" % st["events_sent"])
    finally:
        srv.close()


def stream_after_login(srv):
    raw = bytes(srv.conns[0].raw)
    return raw[raw.index(b'version="1"/>') + len(b'version="1"/>'):]


def test_split_and_determinism():
    args = ["--matches", "3", "--rate", "0", "--seed", "9", "--tick", "45"]
    a = start_server()
    b = start_server()
    c = start_server()
    try:
        _, sa, ea, _ = run_feedsim(a, *args)
        _, sb, eb, _ = run_feedsim(b, *(args + ["--split", "7"]))
        _, sc, _, _ = run_feedsim(c, *(args[:4] + ["--seed", "10", "--tick",
                                                    "45"]))
        check(stream_after_login(a) == stream_after_login(b),
              "--split changed the bytes")
        check(stream_after_login(a) != stream_after_login(c),
              "another seed gave the same bytes")
        check(sb["writes"] >= sb["bytes_sent"] // 7,
              "%d writes for %d bytes with --split 7"
              % (sb["writes"], sb["bytes_sent"]))
        check(sa["writes"] < sb["writes"], "--split did not cut more")
        check(ea["matches"] == eb["matches"], "expected states differ")
        same_state(b, eb)
    finally:
        a.close()
        b.close()
        c.close()


def test_no_login():
    srv = start_server()
    try:
        _, st, exp, _ = run_feedsim(srv, "--matches", "2", "--rate", "0",
                                    "--seed", "4", "--tick", "60",
                                    "--no-login", "--reconnect-after", "40")
        first = bytes(srv.conns[0].raw).lstrip()
        check(first.startswith(b'<event seq="1" source="feed-1"'),
              "first document: %r" % first[:60])
        check(all(c.login is None for c in srv.conns), "a login was sent")
        check(len(srv.conns) >= 2, "no reconnect")
        same_state(srv, exp)
    finally:
        srv.close()


def test_malformed():
    srv = start_server(max_doc=4096)
    try:
        _, st, exp, _ = run_feedsim(srv, "--matches", "3", "--rate", "0",
                                    "--seed", "3", "--tick", "30",
                                    "--bad-rate", "0.2", "--max-doc", "4096")
        bad = st["malformed"]
        check(sum(bad.values()) > 50, "few malformed documents: %r" % bad)
        check(all(v > 0 for v in bad.values()), "a kind never sent: %r" % bad)
        check(st["malformed_resent"] == 0, "resent without a reconnect")
        check(srv.junk == bad["junk"],
              "junk: server saw %d, sent %d" % (srv.junk, bad["junk"]))
        for reason in ("not_well_formed", "bad_attribute", "bad_element",
                       "missing_seq", "too_large"):
            check(srv.errors.get(reason, 0) == bad[reason],
                  "%s: server rejected %d, feedsim sent %d"
                  % (reason, srv.errors.get(reason, 0), bad[reason]))
            check(st["errors"].get(reason, 0) == bad[reason],
                  "%s: feedsim counted %d error replies for %d sent"
                  % (reason, st["errors"].get(reason, 0), bad[reason]))
        check(st["malformed_seq_used"] == bad["bad_attribute"] + bad["bad_element"],
              "malformed_seq_used")
        check(st["complete"], "incomplete")
        same_state(srv, exp)
    finally:
        srv.close()


def test_sources():
    srv = start_server(tokens={"src-1": "a", "src-2": "b", "src-3": "c"})
    tmp = tempfile.NamedTemporaryFile("w", prefix="feedsim-tokens-",
                                      delete=False)
    tmp.write("# source token\nsrc-1 a\nsrc-2 b\n\nsrc-3 c\n")
    tmp.close()
    try:
        _, st, exp, _ = run_feedsim(srv, "--matches", "6", "--sources", "3",
                                    "--source-prefix", "src-", "--tokens",
                                    tmp.name, "--rate", "0", "--tick", "60",
                                    "--multi", "0.5")
        check(sorted(srv.accepted) == ["src-1", "src-2", "src-3"],
              "sources: %r" % sorted(srv.accepted))
        for name, seqs in srv.accepted.items():
            check(seqs == list(range(1, len(seqs) + 1)),
                  "%s: seqs not 1..n" % name)
            check(st["sources"][name]["acked"] == seqs[-1], "%s acked" % name)
        for mid, src in srv.match_source.items():
            index = int(mid.rsplit(":", 1)[1])
            check(src == "src-%d" % (index % 3 + 1),
                  "match %s went to %s" % (mid, src))
        same_state(srv, exp)
    finally:
        os.unlink(tmp.name)
        srv.close()


def test_no_server():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody listens there now
    p = subprocess.run([FEEDSIM, "--port", str(port), "--matches", "1",
                        "--duration", "0.5", "-q"], capture_output=True,
                       timeout=RUN_TIMEOUT)
    err = p.stderr.decode()
    check(p.returncode == 1, "exit %d without a server" % p.returncode)
    check("never connected (Connection refused)" in err, "stderr: " + err)
    check(json.loads(p.stdout)["complete"] is False, "complete")


def test_heartbeat_and_sigterm():
    srv = start_server()
    p = None
    try:
        p = subprocess.Popen([FEEDSIM, "--port", str(srv.port), "--matches",
                              "2", "--rate", "2", "--heartbeat", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
                srv.cts < 1 or len(srv.accepted.get("feed-1", [])) < 2):
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        check(srv.cts >= 1, "no heartbeat while idle")
        st = json.loads(out.decode().strip().splitlines()[-1])
        check(st["interrupted"] is True, "not marked interrupted")
        check(p.returncode == (0 if st["unacked"] == 0 else 1),
              "exit %d after SIGTERM with %d unacked"
              % (p.returncode, st["unacked"]))
        check(st["complete"] == (st["unacked"] == 0), "complete vs unacked")
        check(st["heartbeats_sent"] >= 1, "heartbeats_sent")
        check(st["events_sent"] >= 2, "events_sent %d" % st["events_sent"])
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        srv.close()


def test_usage():
    p = subprocess.run([FEEDSIM, "--help"], capture_output=True)
    text = p.stdout.decode()
    check(p.returncode == 0, "--help failed")
    opts = set(re.findall(r"--([a-z][a-z-]+)", text))
    for o in ("host", "port", "sources", "source-prefix", "token", "tokens",
              "no-login", "window", "heartbeat", "peer-timeout",
              "reconnect-after", "ack-timeout", "matches", "seed", "id-prefix",
              "start", "tick", "multi", "sent", "match-seconds", "rate",
              "events", "duration", "split", "bad-rate", "bad-kinds",
              "max-doc", "expect", "quiet", "verbose", "help"):
        check(o in opts, "--help does not document --" + o)
    p = subprocess.run([FEEDSIM, "--rate", "1", "--match-seconds", "3"],
                       capture_output=True)
    check(p.returncode == 2, "conflicting flags exit %d" % p.returncode)


TESTS = [test_usage, test_login_and_state, test_wrong_token,
         test_resend_after_crash, test_forced_reconnects_and_coalesced_acks,
         test_withheld_acks_fail, test_split_and_determinism, test_no_login,
         test_malformed, test_sources, test_no_server,
         test_heartbeat_and_sigterm]


def main():
    if not os.access(FEEDSIM, os.X_OK):
        print("missing %s (build it with make)" % FEEDSIM)
        return 1
    failed = 0
    for t in TESTS:
        start = time.monotonic()
        try:
            t()
            print("ok    %s (%.1fs)" % (t.__name__, time.monotonic() - start))
        except Exception as e:  # report every test, then fail
            failed += 1
            print("FAIL  %s: %s" % (t.__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
