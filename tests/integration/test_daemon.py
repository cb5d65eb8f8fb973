#!/usr/bin/env python3
"""tests/integration/test_daemon.py - the daemon as a process: flags and
their environment variables, --help, bad values, and an orderly exit on
SIGTERM and SIGINT."""

import signal
import subprocess

from harness import Cleanup, Proc, check, free_port, program, run_tests, wait_until

SCOREWIRE = program("scorewire")


def test_help_lists_every_flag_and_env():
    out = subprocess.run([SCOREWIRE, "--help"], capture_output=True, text=True,
                         timeout=10)
    check(out.returncode == 0, f"--help exit {out.returncode}")
    for flag in ["--feed-port", "--http-port", "--admin-port", "--admin-bind",
                 "--bind", "--db", "--journal-dir", "--tokens", "--log-level",
                 "--log-format"]:
        check(flag in out.stdout, f"{flag} missing from --help")
        env = "SCOREWIRE_" + flag[2:].upper().replace("-", "_")
        check(env in out.stdout, f"{env} missing from --help")


def test_bad_values_exit_2():
    for argv in (["--feed-port", "70000"], ["--log-level", "loud"],
                 ["--log-format", "xml"], ["--nope"], ["stray"]):
        out = subprocess.run([SCOREWIRE] + argv, capture_output=True,
                             text=True, timeout=10)
        check(out.returncode == 2, f"{argv}: exit {out.returncode}")
        check("scorewire:" in out.stderr, f"{argv}: no message: {out.stderr!r}")


def start(env=None, argv=()):
    return Proc("daemon", [SCOREWIRE, "--feed-port", str(free_port()),
                           "--http-port", str(free_port()),
                           "--admin-port", str(free_port())] + list(argv),
                env=env)


def test_env_and_flag_precedence():
    with Cleanup() as c:
        port = free_port()
        # the environment sets the level; the flag sets the format
        p = c.add(Proc("daemon-env", [SCOREWIRE, "--log-format", "json",
                                      "--http-port", str(free_port()),
                                      "--admin-port", str(free_port())],
                       env={"SCOREWIRE_LOG_FORMAT": "logfmt",
                            "SCOREWIRE_FEED_PORT": str(port)}))
        wait_until("start line", lambda: "scorewire starting" in p.output())
        check(p.output().lstrip().startswith("{"), "flag did not win over env")
        check(f'"feed_port":"{port}"' in p.output(), "env port not used")


def test_sigterm_and_sigint_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Cleanup() as c:
            p = c.add(start())
            wait_until("start line", lambda: "scorewire starting" in p.output())
            p.signal(sig)
            rc = p.wait(timeout=15)
            check(rc == 0, f"{sig.name}: exit {rc}")
            check("stopped" in p.output(), "no stopped line")


def test_systemd_ready_watchdog_stopping():
    """Under systemd (Type=notify, WatchdogSec): READY=1 once every stage is
    up (the store has loaded the database), WATCHDOG=1 at half the watchdog
    period, STOPPING=1 on SIGTERM."""
    import os
    import socket
    from harness import tmpdir
    from pgtemp import Cluster
    path = os.path.join(tmpdir("notify"), "notify.sock")
    with Cluster() as db, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, \
            Cleanup() as c:
        s.bind(path)
        s.settimeout(20)
        p = c.add(start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
                        argv=["--db", db.conninfo]))
        got = [s.recv(256).decode() for _ in range(3)]
        check(got[0].startswith("READY=1"), f"first notification {got[0]!r}")
        check(got[1:] == ["WATCHDOG=1", "WATCHDOG=1"], f"pings {got[1:]!r}")
        p.signal(signal.SIGTERM)
        check(p.wait(timeout=15) == 0, "exit status")
        rest = []
        while True:
            msg = s.recv(256).decode()
            rest.append(msg)
            if msg != "WATCHDOG=1":
                break
        check(rest[-1] == "STOPPING=1", f"after SIGTERM: {rest!r}")


if __name__ == "__main__":
    run_tests([test_help_lists_every_flag_and_env, test_bad_values_exit_2,
               test_env_and_flag_precedence, test_sigterm_and_sigint_exit_0,
               test_systemd_ready_watchdog_stopping])
