#!/usr/bin/env python3
"""tests/integration/test_admin.py - the admin listener of the real daemon:
/metrics in Prometheus text (promtool agrees) with every stage's series and
the runtime's, /actors as the live supervision tree, the log level read and
changed at run time, /api/model, the operator page with its security
headers, the refusals (404, 405, 411, 413), and the loopback-only bind."""

import json
import socket
import subprocess
import time
import urllib.request

from harness import check, run_tests
from notify_system import System, http_get, parse_metrics


def request(port, method, path, body=None, headers=None, timeout=10.0,
            length=True):
    """(status, headers, body) of one request on its own connection; with
    @length, a Content-Length for @body."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 "Connection: close"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None and length:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
        conn.sendall(data)
        raw = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        conn.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *hdr_lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in hdr_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(status_line.split()[1]), hdrs, rest


def get(port, path, timeout=5.0):
    """(status, headers with lower-case names, body) of GET @path."""
    status, headers, body = http_get(port, path, timeout=timeout)
    return status, {k.lower(): v for k, v in headers.items()}, body


def listen_addresses(port):
    """Local addresses of the sockets listening on @port (IPv4 and IPv6)."""
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                addr, p = fields[1].split(":")
                if int(p, 16) == port and fields[3] == "0A":  # LISTEN
                    out.append(addr)
    return out


def test_metrics_are_prometheus_text(s):
    status, headers, body = get(s.admin_port, "/metrics")
    check(status == 200, f"/metrics answered {status}")
    check(headers.get("content-type") ==
          "text/plain; version=0.0.4; charset=utf-8",
          f"content type {headers.get('content-type')}")
    check(headers.get("cache-control") == "no-store", "cacheable metrics")
    lint = subprocess.run(["promtool", "check", "metrics"], input=body,
                          capture_output=True, timeout=30)
    check(lint.returncode == 0,
          f"promtool: {lint.stdout.decode()}{lint.stderr.decode()}")
    m = parse_metrics(body.decode())
    # The stages' registry and the runtime's own series, side by side.
    for name in ("scorewire_notify_clients", "scorewire_model_updates_total",
                 "scorewire_store_db_up", "scorewire_actors_spawned_total",
                 'scorewire_actors{kind="admin"}'):
        check(name in m, f"{name} missing from /metrics")
    check(m['scorewire_actors{kind="admin"}'] == 1, "one admin actor")
    # Not on the public port.
    check(http_get(s.http_port, "/metrics")[0] == 404, "/metrics is public")


def test_actors_is_the_live_tree(s):
    status, headers, body = get(s.admin_port, "/actors")
    check(status == 200, f"/actors answered {status}")
    check(headers.get("content-type") == "application/json",
          f"content type {headers.get('content-type')}")
    tree = json.loads(body)
    names = set()

    def walk(nodes):
        for n in nodes:
            names.add(n.get("name"))
            walk(n.get("children", []))
    walk(tree["tree"])
    for name in ("scorewire", "admin", "pipeline", "notify", "store",
                 "model.matches"):
        check(name in names, f"{name} missing from /actors: {sorted(filter(None, names))}")
    check(tree["alive"] >= len(names) - 1, f"alive {tree['alive']}")


def find_node(tree, name):
    """The first node of /actors' @tree named @name, or None."""
    stack = list(tree["tree"])
    while stack:
        n = stack.pop()
        if n.get("name") == name:
            return n
        stack.extend(n.get("children", []))
    return None


def test_a_killed_stage_is_restarted(s):
    def actors():
        return json.loads(get(s.admin_port, "/actors")[2])
    before = actors()
    store = find_node(before, "store")
    check(store is not None, "no store in /actors")
    status, _, body = request(s.admin_port, "POST", "/actors/kill", b"store\n")
    check(status == 200 and body == b"killed store\n",
          f"POST /actors/kill store: {status} {body!r}")
    deadline = time.monotonic() + 20
    after = None
    while time.monotonic() < deadline:
        tree = actors()
        node = find_node(tree, "store")
        if node and node["pid"] != store["pid"]:
            after = (tree, node)
            break
        time.sleep(0.1)
    check(after is not None, "the store was not restarted within 20 s")
    tree, node = after
    check(node["restarts"] >= store["restarts"] + 1,
          f"store restarts {store['restarts']} -> {node['restarts']}")
    check(tree["restarts"] > before["restarts"],
          f"tree restarts {before['restarts']} -> {tree['restarts']}")
    check("actor killed by an operator" in s.daemon.output(), "kill not logged")
    m = parse_metrics(get(s.admin_port, "/metrics")[2].decode())
    check(m.get("scorewire_supervisor_restarts_total", 0) >= 1,
          "scorewire_supervisor_restarts_total did not move")
    # What cannot be killed, with its reason.
    check(request(s.admin_port, "POST", "/actors/kill", b"nobody")[0] == 404,
          "unknown name")
    check(request(s.admin_port, "POST", "/actors/kill", b"admin")[0] == 409,
          "the admin actor")
    # The pipeline works again: ready once the store is back.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and http_get(s.http_port, "/readyz")[0] != 200:
        time.sleep(0.2)
    check(http_get(s.http_port, "/readyz")[0] == 200, "not ready after restart")


def test_loglevel_at_run_time(s):
    status, _, body = http_get(s.admin_port, "/loglevel")
    check(status == 200 and body == b"info\n", f"GET /loglevel: {status} {body!r}")
    status, _, body = request(s.admin_port, "PUT", "/loglevel", b"debug\n")
    check(status == 200 and body == b"debug\n", f"PUT debug: {status} {body!r}")
    check(http_get(s.admin_port, "/loglevel")[2] == b"debug\n", "level not kept")
    status, _, body = request(s.admin_port, "PUT", "/loglevel", b"loud")
    check(status == 400 and b"debug, info, warn, error" in body,
          f"PUT loud: {status} {body!r}")
    check("log level changed" in s.daemon.output(), "the change was not logged")
    status, _, _ = request(s.admin_port, "PUT", "/loglevel", b"warn")
    check(status == 200, f"PUT warn: {status}")
    check(http_get(s.admin_port, "/loglevel")[2] == b"warn\n", "level not warn")
    check(request(s.admin_port, "PUT", "/loglevel", b"info")[0] == 200,
          "back to info")


def test_model_view(s):
    status, headers, body = get(s.admin_port, "/api/model", timeout=10)
    check(status == 200, f"/api/model answered {status}")
    check(headers.get("content-type") == "application/json",
          f"content type {headers.get('content-type')}")
    check(isinstance(json.loads(body), list), f"not a list: {body[:200]!r}")


def test_operator_page_and_refusals(s):
    port = s.admin_port
    status, headers, body = get(port, "/")
    check(status == 200 and b"admin.js" in body, f"/ answered {status}")
    csp = headers.get("content-security-policy", "")
    check("default-src 'self'" in csp and "img-src 'self' data:" in csp,
          f"CSP {csp!r}")
    check(headers.get("x-content-type-options") == "nosniff", "no nosniff")
    for path, kind in (("/admin.js", "javascript"), ("/admin.css", "text/css")):
        status, headers, _ = get(port, path)
        check(status == 200 and kind in headers.get("content-type", ""),
              f"{path}: {status} {headers.get('content-type')}")
    # Refusals, each with its reason.
    check(http_get(port, "/nope")[0] == 404, "unknown path")
    check(http_get(port, "/metrics/x")[0] == 404, "path under a route")
    status, headers, _ = request(port, "DELETE", "/loglevel")
    check(status == 405 and headers.get("allow") == "GET, PUT",
          f"DELETE: {status} allow={headers.get('allow')}")
    status, _, _ = request(port, "PUT", "/loglevel", b"x" * 5000)
    check(status == 413, f"5000-byte body: {status}")
    status, _, _ = request(port, "PUT", "/loglevel", b"4\r\ninfo\r\n0\r\n\r\n",
                           headers={"Transfer-Encoding": "chunked"},
                           length=False)
    check(status in (400, 411), f"body without a length: {status}")
    status, headers, body = request(port, "HEAD", "/loglevel")
    check(status == 200 and body == b"" and headers.get("content-length") == "5",
          f"HEAD: {status} {headers} {body!r}")
    # Still serving after all that, with kept-alive connections too.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/loglevel", timeout=5) as r:
        check(r.status == 200, "GET after refusals")


def test_bound_to_loopback(s):
    addrs = listen_addresses(s.admin_port)
    check(addrs == ["0100007F"], f"admin listens on {addrs}, not 127.0.0.1 only")


def test_bound_to_every_interface_when_asked(_):
    with System("admin-bind-any", daemon_args=("--admin-bind", "0.0.0.0")) as s:
        addrs = listen_addresses(s.admin_port)
        check(addrs and all(a.strip("0") == "" for a in addrs),
              f"--admin-bind 0.0.0.0 listens on {addrs}")


def on(s, fn):
    """@fn as a test of system @s, named as @fn."""
    def t():
        fn(s)
    t.__name__ = fn.__name__
    return t


def main():
    # One daemon (and PostgreSQL) serves every test but the last.
    with System("admin") as s:
        tests = [on(s, t) for t in (
            test_metrics_are_prometheus_text,
            test_actors_is_the_live_tree,
            test_a_killed_stage_is_restarted,
            test_loglevel_at_run_time,
            test_model_view,
            test_operator_page_and_refusals,
            test_bound_to_loopback)]
        tests.append(on(None, test_bound_to_every_interface_when_asked))
        run_tests(tests)


if __name__ == "__main__":
    main()
