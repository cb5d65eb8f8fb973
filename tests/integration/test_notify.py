#!/usr/bin/env python3
"""tests/integration/test_notify.py - the public port against the real
daemon fed by feedsim, with real WebSocket clients (scorewire-wsbench and
tests/integration/wsclient.py): final views equal feedsim's expected state,
versions in order without gaps, resume with `since` (recovered, and a
snapshot when too old), a client that never reads is conflated and closed
while the others keep their latency, bad frames get errors, and the page,
/healthz and /readyz on the same port."""

import datetime
import http.client
import json
import os
import subprocess
import threading
import time

from harness import check, run_tests, tmpdir, wait_until
from notify_system import WSBENCH, System, http_get
from wsclient import Closed, View, WsClient


def reader(client, view, stop, idle=3.0, errors=None, on_msg=None):
    """A thread body: applies every message to @view until @stop is set and
    nothing came for @idle seconds. Protocol violations go to @errors."""
    def run():
        last = time.monotonic()
        while True:
            try:
                batch = client.recv_messages(timeout=0.5)
            except TimeoutError:
                if stop.is_set() and time.monotonic() - last > idle:
                    return
                continue
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(repr(e))
                return
            last = time.monotonic()
            for m in batch:
                try:
                    view.apply(m)
                    if on_msg:
                        on_msg(m)
                except AssertionError as e:
                    errors.append(str(e))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def first_match_message(client, timeout=10):
    """The first snapshot or delta (feed states come first on connect)."""
    for m in client.messages(timeout=timeout):
        if m.get("type") in ("snapshot", "delta"):
            return m
    raise AssertionError("no match message")


def sent_ms(msg):
    s = msg.get("sent")
    if not s:
        return None
    t = datetime.datetime.strptime(s.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")
    return t.timestamp() * 1000.0


# ---- the page and the health endpoints --------------------------------------

def test_page_and_health_on_the_public_port():
    with System("notify-page") as s:
        status, headers, body = http_get(s.http_port, "/")
        check(status == 200, f"/ answered {status}")
        check(headers.get("content-type", "").startswith("text/html"),
              f"/ is {headers.get('content-type')}")
        check(b"app.js" in body and b"style.css" in body, "not the live page")
        csp = headers.get("content-security-policy", "")
        check("default-src 'self'" in csp, f"no CSP: {csp!r}")
        # Kept-alive connections must get each file, not the previous one.
        for path, kind in (("/app.js", "javascript"), ("/style.css", "text/css"),
                           ("/index.html", "text/html")):
            status, headers, _ = http_get(s.http_port, path)
            check(status == 200 and kind in headers.get("content-type", ""),
                  f"{path}: {status} {headers.get('content-type')}")
        check(http_get(s.http_port, "/healthz")[0] == 200, "/healthz")
        check(http_get(s.http_port, "/readyz")[0] == 200, "/readyz")
        # HEAD answers without a body: on a kept-alive connection the next
        # answer must parse. Other methods are refused with the allowed ones.
        conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=5)
        for path, body in (("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
            conn.request("HEAD", path)
            r = conn.getresponse()
            check(r.status == 200 and r.read() == b"",
                  f"HEAD {path}: {r.status}")
            conn.request("GET", path)
            r = conn.getresponse()
            got = r.read()
            check(r.status == 200 and got == body,
                  f"GET {path} after a HEAD: {r.status} {got!r}")
        conn.request("POST", "/healthz", body=b"x")
        r = conn.getresponse()
        check(r.status == 405 and r.getheader("allow") == "GET, HEAD",
              f"POST /healthz: {r.status} allow={r.getheader('allow')}")
        conn.close()
        # Internals stay on the admin listener.
        check(http_get(s.http_port, "/metrics")[0] == 404, "/metrics is public")
        check(http_get(s.http_port, "/nope.js")[0] == 404, "a missing file")


# ---- every subscriber's final view --------------------------------------------

def test_every_subscriber_ends_with_feedsims_state():
    with System("notify-views") as s:
        dump = os.path.join(tmpdir("notify"), "view.json")
        bench = subprocess.Popen(
            [WSBENCH, "--url", f"ws://127.0.0.1:{s.http_port}/ws", "-c", "20",
             "--settle", "0.2", "--duration", "0", "--idle-exit", "4000",
             "--dump", dump, "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # Python clients too: one on "*", one on a list, one subscribed
            # to a match before it exists (feedsim ids are sim:SEED:INDEX).
            stop = threading.Event()
            errors = []
            clients = []
            for subscription in ("*", ["sim:7:0", "sim:7:2"], ["sim:7:5"]):
                c = WsClient(s.http_port)
                c.send_json({"op": "subscribe", "matches": subscription})
                v = View()
                clients.append((subscription, c, v,
                                reader(c, v, stop, errors=errors)))
            time.sleep(0.5)
            exp = s.feedsim("--matches", "8", "--seed", "7", "--rate", "400",
                            "--events", "2000", "--multi", "0.2")
            stop.set()
            out, _ = bench.communicate(timeout=90)
        finally:
            if bench.poll() is None:
                bench.kill()
        check(bench.returncode == 0, f"wsbench exited {bench.returncode}:\n{out}")
        with open(dump) as f:
            got = json.load(f)
        want = exp["matches"]
        check(got == want, "wsbench's view differs from feedsim's expected state:\n"
              + first_difference(got, want))
        for subscription, c, v, t in clients:
            t.join(timeout=30)
            c.close()
            ids = want.keys() if subscription == "*" else subscription
            for mid in ids:
                check(v.matches.get(mid) == want[mid],
                      f"client on {subscription}: {mid} differs:\n"
                      + first_difference({mid: v.matches.get(mid)}, {mid: want[mid]}))
            extra = set(v.matches) - set(ids)
            check(not extra, f"client on {subscription} got {sorted(extra)}")
        check(not errors, f"protocol violations: {errors[:5]}")
        # Every delta with a `sent` was timed from it to the model, and
        # every service pass that wrote was timed; both in seconds.
        m = s.metrics()
        n = seconds_histogram(m, "scorewire_notify_upstream_latency_seconds")
        updates = m.get("scorewire_notify_updates_total", 0)
        check(n <= updates,
              f"upstream latency observed {n} times for {updates} updates")
        p = seconds_histogram(m, "scorewire_notify_pass_seconds")
        # A pass wrote at least a frame (that counter is published once a
        # second).
        wait_until("the frame counter to cover every pass", lambda: s.metrics()
                   .get("scorewire_notify_frames_sent_total", 0) >= p,
                   timeout=5)


def seconds_histogram(m, name):
    """Checks histogram @name in metrics @m: observed, +Inf equal to its
    count, a mean under 0.25 (about a millisecond here for latency, well
    under for a pass with these few clients: in ms or us by mistake it
    would read 1 or hundreds). Returns its count."""
    n = m.get(name + "_count", 0)
    check(n > 0, f"{name}: nothing observed")
    check(m.get(name + '_bucket{le="+Inf"}') == n,
          f"{name}: +Inf bucket differs from its count")
    mean = m.get(name + "_sum", -1) / n
    check(0 <= mean < 0.25, f"{name}: mean {mean} s")
    return n


def first_difference(got, want):
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            return f"{k}:\n  got  {got.get(k)}\n  want {want.get(k)}"
    return "(none)"


# ---- resume with since ----------------------------------------------------------

def test_resume_with_since():
    with System("notify-resume") as s:
        mid = "sim:3:0"
        # 20 updates a second: the second away below misses some twenty,
        # well inside the ring of 64.
        feed, _ = s.feedsim_background("--matches", "1", "--seed", "3",
                                       "--rate", "20", "--duration", "30")
        a = WsClient(s.http_port)
        a.send_json({"op": "subscribe", "matches": [mid]})
        view = View()
        for m in a.messages(timeout=10, until=lambda m: view.versions.get(mid, 0) >= 20):
            view.apply(m)
        check(view.versions.get(mid, 0) >= 20, "the match did not reach v20")
        a.close()
        have = view.versions[mid]
        time.sleep(1.0)  # the match moves on while we are away

        # Recent enough: the missed deltas, the first marked recovered.
        b = WsClient(s.http_port)
        b.send_json({"op": "subscribe", "matches": [mid], "since": {mid: have}})
        first = first_match_message(b)
        check(first.get("type") == "delta" and first.get("recovered") is True
              and first.get("version") == have + 1,
              f"resume from v{have} began with {first}")
        view.apply(first)
        target = have + 30  # across what was missed and on into live ones
        for m in b.messages(timeout=10,
                            until=lambda m: view.versions[mid] >= target):
            view.apply(m)  # consecutive, or it raises
        check(view.versions[mid] >= target, "the resumed stream stopped")
        b.close()

        # Too old (the ring holds fewer than all of them), or from the
        # future: a snapshot.
        wait_until("more versions than the ring holds",
                   lambda: current_version(s, mid) > have + 80, timeout=30)
        for since in (1, 10**9):
            c = WsClient(s.http_port)
            c.send_json({"op": "subscribe", "matches": [mid], "since": {mid: since}})
            m = first_match_message(c)
            check(m.get("type") == "snapshot", f"since {since} began with {m}")
            c.close()
        feed.stop()


def current_version(s, mid):
    c = WsClient(s.http_port)
    c.send_json({"op": "subscribe", "matches": [mid]})
    m = first_match_message(c)
    c.close()
    return m["match"]["version"] if m.get("type") == "snapshot" else 0


# ---- a client that never reads ------------------------------------------------------

def test_slow_client_conflated_then_closed_others_unharmed():
    with System("notify-slow") as s:
        feed, _ = s.feedsim_background("--matches", "40", "--seed", "11",
                                       "--rate", "600", "--duration", "60")
        # The reader that must stay fast, measuring latency from `sent`.
        fast = WsClient(s.http_port)
        fast.send_json({"op": "subscribe", "matches": "*"})
        fview, errors, lat = View(), [], []
        stop = threading.Event()

        def latency(m):
            t = sent_ms(m)
            if t is not None:
                lat.append(time.time() * 1000.0 - t)
        t = reader(fast, fview, stop, idle=0.5, errors=errors, on_msg=latency)

        # The one that subscribes and never reads again, with a small
        # receive window so its backlog builds on the server.
        slow = WsClient(s.http_port, rcvbuf=4096)
        slow.send_json({"op": "subscribe", "matches": "*"})
        wait_until("conflation", lambda: s.metric("scorewire_notify_conflated_total") > 0,
                   timeout=60, step=0.5)
        wait_until("the slow client closed with 1013",
                   lambda: s.metric("scorewire_notify_slow_clients_closed_total") >= 1,
                   timeout=60, step=0.5)
        # Reading now, it finds the end: the close frame if it got through.
        code = "open"
        try:
            while True:
                slow.recv_text(timeout=5)
        except Closed as e:
            code = e.code
        except (TimeoutError, OSError) as e:
            code = repr(e)
        check(code in (1013, None) or "reset" in str(code).lower(),
              f"slow client: {code}")
        stop.set()
        feed.stop()
        t.join(timeout=10)
        fast.close()
        check(not errors, f"the fast client saw {errors[:3]}")
        check(len(lat) > 1000, f"only {len(lat)} deltas reached the fast client")
        lat.sort()
        p99 = lat[int(len(lat) * 0.99)]
        check(p99 < 1000, f"fast client p99 {p99:.0f} ms while the slow one hung")
        print(f"     fast client: {len(lat)} deltas, p50 {lat[len(lat) // 2]:.1f} ms,"
              f" p99 {p99:.1f} ms")


# ---- bad frames -------------------------------------------------------------------------

def test_bad_frames_get_errors_and_oversized_closes():
    with System("notify-bad") as s:
        c = WsClient(s.http_port, protocol=None)  # the subprotocol is optional
        replies = []

        def expect_error(send, reason):
            send()
            for m in c.messages(timeout=5, until=lambda m: m.get("type") == "error"):
                if m.get("type") == "error":
                    replies.append(m)
                    check(m.get("reason") == reason, f"wanted {reason}, got {m}")
                    return
            raise AssertionError(f"no error for {reason}")

        expect_error(lambda: c.send_text("{not json"), "malformed")
        expect_error(lambda: c.send_text("[1,2]"), "malformed")
        expect_error(lambda: c.send_json({"op": "dance"}), "unknown_op")
        expect_error(lambda: c.send_json({"op": "subscribe"}), "malformed")
        expect_error(lambda: c.send_frame(0x2, b"\x00\x01"), "unknown_op")
        expect_error(lambda: c.send_json({"op": "subscribe", "matches":
                                          [f"x{i}" for i in range(300)]}),
                     "too_many_subscriptions")
        # Still open and served.
        c.send_json({"op": "ping", "id": 41})
        pong = next(m for m in c.messages(timeout=5) if m.get("type") == "pong")
        check(pong.get("id") == 41, f"pong {pong}")
        # Over 4 KiB: closed with 1009.
        c.send_text("{" + " " * 5000 + "}")
        try:
            while True:
                c.recv_text(timeout=5)
        except Closed as e:
            check(e.code == 1009, f"oversized frame closed with {e.code}")
        # The hub's counters reach the registry once a second.
        wait_until("errors counted", lambda: s.metric(
            "scorewire_notify_client_errors_total") >= len(replies), timeout=10)


def test_a_chatty_client_is_slowed_not_dropped():
    """A client sending far more messages than its budget (100 at once,
    then 50 a second) has its reading paused, not its messages dropped:
    every ping gets its pong, in order, and the pauses are counted."""
    with System("notify-chatty") as s:
        c = WsClient(s.http_port)
        n = 300
        for i in range(n):
            c.send_json({"op": "ping", "id": i})
        ids = [m.get("id") for m in c.messages(
            timeout=10, until=lambda m: m.get("id") == n - 1)
            if m.get("type") == "pong"]
        check(ids == list(range(n)),
              f"{len(ids)} pongs of {n}, first gaps: "
              f"{sorted(set(range(n)) - set(ids))[:5]}")
        wait_until("the pauses counted", lambda: s.metric(
            "scorewire_notify_throttled_total") > 0, timeout=10)
        c.close()


if __name__ == "__main__":
    run_tests([
        test_page_and_health_on_the_public_port,
        test_every_subscriber_ends_with_feedsims_state,
        test_resume_with_since,
        test_slow_client_conflated_then_closed_others_unharmed,
        test_bad_frames_get_errors_and_oversized_closes,
        test_a_chatty_client_is_slowed_not_dropped,
    ])
