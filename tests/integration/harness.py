"""tests/integration/harness.py - what every integration test needs: the
programs under test, free loopback ports, processes that are always cleaned
up, and waiting with a deadline (never an unbounded loop)."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SCOREWIRE_BIN", os.path.join(ROOT, "bin"))
OUT = os.path.join(ROOT, "out", "integration")


def program(name):
    """Path of bin/<name> (scorewire, scorewire-feedsim, ...)."""
    return _built(os.path.join(BIN, name), "make")


def bench_program(name):
    """Path of build/<variant>/bench/<name>, where make builds the
    benchmarks (as tools/run-bench.sh finds them)."""
    variant = os.environ.get("VARIANT", "release")
    return _built(os.path.join(ROOT, "build", variant, "bench", name),
                  "make bench")


def _built(path, how):
    if not os.access(path, os.X_OK):
        raise SystemExit(f"missing program {path}: run {how} first")
    return path


_HANDED = set()


def free_port():
    """A loopback TCP port nobody listens on right now, and not one this
    process was handed before: the kernel may give the same free port to
    two binds in a row, and a daemon given it for two listeners fails to
    start (seen once under make tsan)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED:
            _HANDED.add(port)
            return port
    raise AssertionError("no free loopback port that was not handed out")


def wait_until(what, fn, timeout=20.0, step=0.05):
    """Calls fn() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


_runs = {}


class Proc:
    """A child process whose output goes to a log file under out/: named
    after the test script, the process and a count, so no run overwrites
    another's."""

    def __init__(self, name, argv, env=None):
        os.makedirs(OUT, exist_ok=True)
        self.name = name
        script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        n = _runs[name] = _runs.get(name, 0) + 1
        self.log_path = os.path.join(OUT, f"{script}.{name}.{n}.log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=full_env)

    def signal(self, sig):
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def wait(self, timeout):
        return self.p.wait(timeout=timeout)

    def alive(self):
        return self.p.poll() is None

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL if it does not go. Returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


class Cleanup:
    """Stops every registered process at exit, even after a failure."""

    def __init__(self):
        self.procs = []

    def add(self, proc):
        self.procs.append(proc)
        return proc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        return False


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def run_tests(tests):
    """Runs test functions in order; prints each; exits 1 on a failure."""
    failed = 0
    for t in tests:
        start = time.monotonic()
        try:
            t()
            print(f"ok   {t.__name__} ({time.monotonic() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on
            failed += 1
            print(f"FAIL {t.__name__}: {e!r}", flush=True)
            import traceback
            traceback.print_exc()
    sys.exit(1 if failed else 0)


def tmpdir(prefix):
    return tempfile.mkdtemp(prefix=f"scorewire-{prefix}-")
