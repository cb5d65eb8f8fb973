"""tests/integration/wsclient.py - a small WebSocket client (RFC 6455) on the
standard library, for tests that need to do what a browser would and what a
browser would not: send oversized or binary frames, stop reading, look at
close codes.

    c = WsClient(port)                   # connects and upgrades /ws
    c.send_json({"op": "subscribe", "matches": "*"})
    for msg in c.messages(timeout=5):    # arrays are flattened
        ...
    c.close()
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    """The server closed the connection; .code is its close code or None."""

    def __init__(self, code, reason=b""):
        super().__init__(f"closed by the server: code {code} {reason!r}")
        self.code = code
        self.reason = reason


class WsClient:
    def __init__(self, port, host="127.0.0.1", path="/ws",
                 protocol="scorewire.v1", rcvbuf=None, timeout=10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # Before connect, so the window the server sees is small too.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.pending = []  # messages of a frame not handed out yet
        self.frames_received = 0
        key = base64.b64encode(os.urandom(16))
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}",
                 "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key.decode()}",
                 "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if not status.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {status!r}")
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        want = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if headers.get(b"sec-websocket-accept") != want:
            raise ConnectionError("bad Sec-WebSocket-Accept")
        self.headers = headers

    # ---- sending ---------------------------------------------------------

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj, separators=(",", ":")))

    # ---- receiving -------------------------------------------------------

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None)
            self.buf += chunk

    def _frame(self, deadline):
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        n, at = b1 & 0x7F, 2
        if n == 126:
            self._fill(4, deadline)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10, deadline)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._fill(at + n, deadline)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_text(self, timeout=10.0):
        """The next whole text message (a frame or several), as str.
        Answers pings; raises Closed on a close frame or EOF."""
        deadline = time.monotonic() + timeout
        parts = []
        while True:
            fin, op, payload = self._frame(deadline)
            if op == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self.send_frame(0x8, payload[:2])
                except OSError:
                    pass
                raise Closed(code, payload[2:])
            if op == 0x9:
                self.send_frame(0xA, payload)
                continue
            if op == 0xA:
                continue
            if op == 0x2:
                raise AssertionError("the server sent a binary frame")
            parts.append(payload)
            if fin:
                self.frames_received += 1
                return b"".join(parts).decode("utf-8")

    def recv_messages(self, timeout=10.0):
        """The messages of the next frame (a batched array is flattened),
        or those of the last one that next_message() left."""
        if self.pending:
            batch, self.pending = self.pending, []
            return batch
        obj = json.loads(self.recv_text(timeout))
        return obj if isinstance(obj, list) else [obj]

    def next_message(self, timeout=10.0):
        """The next message; the rest of its frame waits in .pending."""
        if not self.pending:
            self.pending = self.recv_messages(timeout)
        return self.pending.pop(0)

    def messages(self, timeout=10.0, until=None):
        """Yields messages until `timeout` passes without one, or until
        `until(msg)` is true (that message is yielded last). Stopping early
        loses nothing: the rest stays for the next call."""
        while True:
            try:
                m = self.next_message(timeout)
            except TimeoutError:
                return
            yield m
            if until and until(m):
                return

    def close(self):
        try:
            self.send_frame(0x8, struct.pack(">H", 1000))
        except OSError:
            pass
        self.sock.close()


class View:
    """A client's view of every match, applied exactly as ws-protocol.md
    says, checking versions on the way (a gap raises)."""

    def __init__(self):
        self.matches = {}
        self.versions = {}
        self.recovered = 0

    def apply(self, msg):
        kind = msg.get("type")
        if kind == "snapshot":
            m = dict(msg["match"])
            self.versions[m["id"]] = m.pop("version")
            for k in ("feed", "gap"):
                m.pop(k, None)
            self.matches[m["id"]] = m
        elif kind == "delta":
            mid = msg["id"]
            if mid not in self.versions:
                raise AssertionError(f"delta for {mid} before its snapshot")
            if msg["version"] != self.versions[mid] + 1:
                raise AssertionError(
                    f"{mid}: delta v{msg['version']} after v{self.versions[mid]}")
            self.versions[mid] = msg["version"]
            if msg.get("recovered"):
                self.recovered += 1
            m = self.matches[mid]
            for k, v in msg.get("changes", {}).items():
                if k in ("feed", "gap"):
                    continue
                if v is None:
                    m.pop(k, None)
                else:
                    m[k] = v
            inc = msg.get("incidents")
            if inc:
                lst = m.setdefault("incidents", [])
                for x in inc.get("upsert", []):
                    for i, y in enumerate(lst):
                        if y["id"] == x["id"]:
                            lst[i] = x
                            break
                    else:
                        lst.append(x)
                gone = set(inc.get("delete", []))
                m["incidents"] = [y for y in lst if y["id"] not in gone]
        return kind
