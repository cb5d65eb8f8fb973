"""tests/integration/notify_system.py - the whole pipeline for the notify
tests, the browser test and the notify benchmark: a throwaway PostgreSQL,
the daemon on free loopback ports, and feedsim runs against it.

    with System() as s:                  # PostgreSQL + daemon, ready
        exp = s.feedsim("--matches", "4", "--events", "400")
        ...                              # s.http_port, s.metrics()

Run as a program it starts a system and prints one JSON line with its
ports, then keeps it until stdin closes (the browser test drives it so).
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request

from harness import OUT, ROOT, Proc, check, free_port, program, tmpdir, wait_until
from pgtemp import Cluster

SCOREWIRE = program("scorewire")
FEEDSIM = program("scorewire-feedsim")
WSBENCH = program("scorewire-wsbench")


def http_get(port, path, timeout=5.0):
    """(status, headers, body) of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError:
        return None, {}, b""


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': value} (labels as written)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?)(\{.*\})?\s+(\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


class System:
    def __init__(self, name="notify", daemon_args=(), env=None):
        self.stack = contextlib.ExitStack()
        self.name = name
        try:
            self.db = self.stack.enter_context(Cluster())
            self.feed_port = free_port()
            self.http_port = free_port()
            self.admin_port = free_port()
            self.daemon = Proc(name, [
                SCOREWIRE, "--bind", "127.0.0.1",
                "--feed-port", str(self.feed_port),
                "--http-port", str(self.http_port),
                "--admin-port", str(self.admin_port),
                "--admin-bind", "127.0.0.1",
                "--web-dir", os.path.join(ROOT, "web"),
                "--db", self.db.conninfo] + list(daemon_args), env=env)
            self.stack.callback(self.daemon.stop)
            wait_until("the public port's /healthz",
                       lambda: self._alive() and
                       http_get(self.http_port, "/healthz")[0] == 200,
                       timeout=30)
            wait_until("/readyz", lambda: self._alive() and
                       http_get(self.http_port, "/readyz")[0] == 200,
                       timeout=60)
        except BaseException:
            self.stack.close()
            raise

    def _alive(self):
        if not self.daemon.alive():
            raise AssertionError("the daemon exited:\n" + self.daemon.output()[-3000:])
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stack.close()
        return False

    def feedsim_argv(self, *args, expect=None):
        argv = [FEEDSIM, "--host", "127.0.0.1", "--port", str(self.feed_port),
                "--sent", "wall", "--quiet"]
        if expect:
            argv += ["--expect", expect]
        return argv + list(args)

    def feedsim(self, *args, timeout=120):
        """Runs feedsim to its end; returns its expected final state."""
        path = os.path.join(tmpdir("feedsim"), "expect.json")
        p = subprocess.run(self.feedsim_argv(*args, expect=path),
                           capture_output=True, text=True, timeout=timeout)
        check(p.returncode == 0,
              f"feedsim exited {p.returncode}: {p.stderr[-2000:]}")
        with open(path) as f:
            return json.load(f)

    def feedsim_background(self, *args):
        """Starts feedsim; returns (Proc, expected-state path)."""
        path = os.path.join(tmpdir("feedsim"), "expect.json")
        p = Proc(self.name + "-feedsim", self.feedsim_argv(*args, expect=path))
        self.stack.callback(p.stop)
        return p, path

    def metrics(self):
        status, _, body = http_get(self.admin_port, "/metrics")
        check(status == 200, f"/metrics answered {status}")
        return parse_metrics(body.decode())

    def metric(self, name):
        """Sum of every series of @name."""
        total = 0.0
        for k, v in self.metrics().items():
            if k == name or k.startswith(name + "{"):
                total += v
        return total


def main():
    with System("notify-browser") as s:
        print(json.dumps({"http_port": s.http_port, "feed_port": s.feed_port,
                          "admin_port": s.admin_port,
                          "feedsim": FEEDSIM, "out": OUT}), flush=True)
        sys.stdin.read()  # until the driver closes it


if __name__ == "__main__":
    main()
