#!/usr/bin/env python3
"""Network fuzz-and-attack run against a live `muxrpc-server`, with healthy
clients calling it all the while. Python 3.11 standard library only.

    scripts/attack.py [--server PATH] [--client PATH] [--short]
                      [--duration-per-class S] [--max-rss-growth-mb MB]
                      [--classes a,b,...] [--list-classes] [--seed N]
                      [--server-arg ARG ...] [--max-total-seconds S]

It starts the server binary (`--server`, default .build/release/muxrpc-server;
a debug build works too) with `--port 0` on 127.0.0.1, reads "listening on
127.0.0.1:PORT" from its stdout, and while the attack classes run one after
another it keeps healthy clients going:

- the `muxrpc-client` binary (`--client`), in consul, nomad and plain mode in
  turn, a bounded number of calls per run, runs bounded in count and time;
- a Python yamux + msgpack net/rpc client (this script run with
  `--healthy-python PORT` in a child process, so the attacks' CPU does not
  stall it), making Echo calls with checked answers on a few long-lived
  streams of one long-lived Consul session.

For each class it records the server's RSS (/proc/PID/status VmRSS) before,
at its peak during the class, and after a short settle with the class's
sockets closed, the server's open file descriptors before and after, what
the server sent back (closed, reset, GoAway and its code, RST of the stream,
an answer), whether it still serves (a fresh Status.Ping and Echo in Consul,
Nomad and plain mode) and every healthy client error during the class. It
ends with a Markdown table and the details of every class, then stops the
server with SIGINT (SIGKILL after a timeout).

Exit status: 0 when the server survived and served every probe, no healthy
client saw an error, RSS at the end is within --max-rss-growth-mb of the
start, and the server exited on SIGINT (with --strict: and no class reported
a DEFECT/SURPRISE); 1 otherwise; 2 for a set-up failure; 3 when the whole run
hit --max-total-seconds.

Opt-in classes (only when named in --classes): connection-exhaustion (holds
--exhaust-connections plain connections stalled past the preamble) and
session-buffer-cap (never-reading Consul sessions under and over the 128 MiB
session buffer cap).

Traffic goes only to 127.0.0.1. Every loop is bounded in count and time.
"""

import argparse
import collections
import errno
import json
import os
import random
import re
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------
# MessagePack, as much as net/rpc over msgpack needs, plus ways to say odd things.
# ---------------------------------------------------------------------------


class Raw:
    """Bytes put into a message as they are (for malformed values)."""

    def __init__(self, data):
        self.data = bytes(data)


class Ext:
    def __init__(self, code, data):
        self.code, self.data = code, bytes(data)

    def __repr__(self):
        return f"Ext({self.code}, {self.data!r})"

    def __eq__(self, other):
        return isinstance(other, Ext) and (self.code, self.data) == (other.code, other.data)

    def __hash__(self):
        return hash((self.code, self.data))


class Pairs:
    """A map given as a list of (key, value): duplicate or unhashable keys."""

    def __init__(self, pairs):
        self.pairs = list(pairs)


class NeedMore(Exception):
    pass


class MsgpackError(Exception):
    pass


def mp_pack(value):
    out = bytearray()
    _pack(value, out)
    return bytes(out)


def _pack(v, out):
    if isinstance(v, Raw):
        out += v.data
    elif v is None:
        out.append(0xC0)
    elif v is True:
        out.append(0xC3)
    elif v is False:
        out.append(0xC2)
    elif isinstance(v, int):
        if 0 <= v < 128:
            out.append(v)
        elif -32 <= v < 0:
            out.append(v & 0xFF)
        elif v >= 0:
            if v < 1 << 8:
                out += struct.pack(">BB", 0xCC, v)
            elif v < 1 << 16:
                out += struct.pack(">BH", 0xCD, v)
            elif v < 1 << 32:
                out += struct.pack(">BI", 0xCE, v)
            else:
                out += struct.pack(">BQ", 0xCF, v)
        else:
            if v >= -(1 << 7):
                out += struct.pack(">Bb", 0xD0, v)
            elif v >= -(1 << 15):
                out += struct.pack(">Bh", 0xD1, v)
            elif v >= -(1 << 31):
                out += struct.pack(">Bi", 0xD2, v)
            else:
                out += struct.pack(">Bq", 0xD3, v)
    elif isinstance(v, float):
        out += struct.pack(">Bd", 0xCB, v)
    elif isinstance(v, str):
        b = v.encode()
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 1 << 8:
            out += struct.pack(">BB", 0xD9, n)
        elif n < 1 << 16:
            out += struct.pack(">BH", 0xDA, n)
        else:
            out += struct.pack(">BI", 0xDB, n)
        out += b
    elif isinstance(v, (bytes, bytearray)):
        n = len(v)
        if n < 1 << 8:
            out += struct.pack(">BB", 0xC4, n)
        elif n < 1 << 16:
            out += struct.pack(">BH", 0xC5, n)
        else:
            out += struct.pack(">BI", 0xC6, n)
        out += v
    elif isinstance(v, (list, tuple)):
        n = len(v)
        if n < 16:
            out.append(0x90 | n)
        elif n < 1 << 16:
            out += struct.pack(">BH", 0xDC, n)
        else:
            out += struct.pack(">BI", 0xDD, n)
        for item in v:
            _pack(item, out)
    elif isinstance(v, (dict, Pairs)):
        items = v.pairs if isinstance(v, Pairs) else list(v.items())
        n = len(items)
        if n < 16:
            out.append(0x80 | n)
        elif n < 1 << 16:
            out += struct.pack(">BH", 0xDE, n)
        else:
            out += struct.pack(">BI", 0xDF, n)
        for key, item in items:
            _pack(key, out)
            _pack(item, out)
    elif isinstance(v, Ext):
        n = len(v.data)
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if n in fixed:
            out += struct.pack(">Bb", fixed[n], v.code)
        elif n < 1 << 8:
            out += struct.pack(">BBb", 0xC7, n, v.code)
        elif n < 1 << 16:
            out += struct.pack(">BHb", 0xC8, n, v.code)
        else:
            out += struct.pack(">BIb", 0xC9, n, v.code)
        out += v.data
    else:
        raise TypeError(f"cannot pack {type(v)}")


def _take(buf, off, n):
    if off + n > len(buf):
        raise NeedMore()
    return off + n


def _hashable(k):
    try:
        hash(k)
        return k
    except TypeError:
        return repr(k)


def mp_unpack(buf, off=0, depth=0):
    """One value from buf at off: (value, next offset). NeedMore when incomplete."""
    if depth > 200:
        raise MsgpackError("nesting too deep")
    _take(buf, off, 1)
    b = buf[off]
    off += 1
    if b <= 0x7F:
        return b, off
    if b >= 0xE0:
        return b - 256, off
    if 0x80 <= b <= 0x8F:
        return _unpack_map(buf, off, b & 0x0F, depth)
    if 0x90 <= b <= 0x9F:
        return _unpack_array(buf, off, b & 0x0F, depth)
    if 0xA0 <= b <= 0xBF:
        n = b & 0x1F
        end = _take(buf, off, n)
        return bytes(buf[off:end]).decode("utf-8", "surrogateescape"), end
    if b == 0xC0:
        return None, off
    if b == 0xC2:
        return False, off
    if b == 0xC3:
        return True, off
    if b in (0xC4, 0xC5, 0xC6, 0xD9, 0xDA, 0xDB):
        size = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
        end = _take(buf, off, size)
        n = int.from_bytes(buf[off:end], "big")
        off = end
        end = _take(buf, off, n)
        data = bytes(buf[off:end])
        return (data if b in (0xC4, 0xC5, 0xC6) else data.decode("utf-8", "surrogateescape")), end
    if b in (0xC7, 0xC8, 0xC9):
        size = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
        end = _take(buf, off, size + 1)
        n = int.from_bytes(buf[off:off + size], "big")
        code = struct.unpack_from(">b", buf, off + size)[0]
        off = end
        end = _take(buf, off, n)
        return Ext(code, buf[off:end]), end
    if b in (0xD4, 0xD5, 0xD6, 0xD7, 0xD8):
        n = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}[b]
        end = _take(buf, off, 1 + n)
        return Ext(struct.unpack_from(">b", buf, off)[0], buf[off + 1:end]), end
    fmt = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
           0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}.get(b)
    if fmt:
        n = struct.calcsize(fmt)
        end = _take(buf, off, n)
        return struct.unpack_from(fmt, buf, off)[0], end
    if b in (0xDC, 0xDD):
        size = 2 if b == 0xDC else 4
        end = _take(buf, off, size)
        return _unpack_array(buf, end, int.from_bytes(buf[off:end], "big"), depth)
    if b in (0xDE, 0xDF):
        size = 2 if b == 0xDE else 4
        end = _take(buf, off, size)
        return _unpack_map(buf, end, int.from_bytes(buf[off:end], "big"), depth)
    raise MsgpackError(f"byte 0x{b:02x} is not MessagePack")


def _unpack_array(buf, off, n, depth):
    if n > len(buf):
        _take(buf, off, n)  # cannot be complete yet: at least a byte an item
    items = []
    for _ in range(n):
        item, off = mp_unpack(buf, off, depth + 1)
        items.append(item)
    return items, off


def _unpack_map(buf, off, n, depth):
    if 2 * n > len(buf):
        _take(buf, off, 2 * n)
    result = {}
    for _ in range(n):
        key, off = mp_unpack(buf, off, depth + 1)
        value, off = mp_unpack(buf, off, depth + 1)
        result[_hashable(key)] = value
    return result, off


def rpc_request(method, seq, args):
    return mp_pack({"ServiceMethod": method, "Seq": seq}) + mp_pack(args)


def parse_responses(buf):
    """Complete (header, body) pairs at the start of buf, and the bytes they took.
    Raises MsgpackError for bytes that are not MessagePack."""
    out, off = [], 0
    while off < len(buf):
        try:
            header, middle = mp_unpack(buf, off)
            body, end = mp_unpack(buf, middle)
        except NeedMore:
            break
        out.append((header, body))
        off = end
    return out, off


def msg_bytes(body):
    """The Msg of an Echo reply as bytes. Go's go-msgpack (and so the server) writes []byte
    as a msgpack str; strings are decoded with surrogateescape, so this gives the bytes back."""
    if not isinstance(body, dict):
        return None
    msg = body.get("Msg")
    if msg is None:
        return b""
    if isinstance(msg, str):
        return msg.encode("utf-8", "surrogateescape")
    return msg


# ---------------------------------------------------------------------------
# yamux frames
# ---------------------------------------------------------------------------

HDR = struct.Struct(">BBHII")
DATA, WU, PING, GOAWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8
WINDOW = 256 * 1024
TYPE_NAMES = {DATA: "Data", WU: "WindowUpdate", PING: "Ping", GOAWAY: "GoAway"}


def frame(typ, flags, sid, length, payload=b"", version=0):
    return HDR.pack(version, typ, flags, sid, length) + payload


def data_frame(sid, payload, flags=0):
    return frame(DATA, flags, sid, len(payload), payload)


def flag_names(flags):
    names = [name for bit, name in ((SYN, "SYN"), (ACK, "ACK"), (FIN, "FIN"), (RST, "RST")) if flags & bit]
    rest = flags & ~0xF
    if rest:
        names.append(f"0x{rest:x}")
    return "|".join(names) or "0"


class FrameParser:
    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def frames(self):
        out, off, buf = [], 0, self.buf
        while len(buf) - off >= 12:
            version, typ, flags, sid, length = HDR.unpack_from(buf, off)
            if typ == DATA:
                if len(buf) - off - 12 < length:
                    break
                payload = bytes(buf[off + 12:off + 12 + length])
                off += 12 + length
            else:
                payload = b""
                off += 12
            out.append((version, typ, flags, sid, length, payload))
        if off:
            del buf[:off]
        return out


def wait_socket(sock, writable=False, timeout=0.0):
    """Whether sock is readable (or writable) within timeout; poll(), so fds past 1024 work."""
    poller = select.poll()
    poller.register(sock, select.POLLOUT if writable else select.POLLIN)
    return bool(poller.poll(max(0, int(timeout * 1000))))


def errno_name(error):
    if isinstance(error, socket.timeout):
        return "timeout"
    number = getattr(error, "errno", None)
    return errno.errorcode.get(number, str(error)) if number else type(error).__name__


# ---------------------------------------------------------------------------
# A raw connection that records what the server does.
# ---------------------------------------------------------------------------


class RawConn:
    """One TCP connection to the server. In yamux mode it parses frames, answers the
    server's pings, tracks windows, and (with auto_credit) credits data it receives at
    once. Records everything the server sent and how the connection ended."""

    def __init__(self, port, preamble=b"", yamux=False, auto_credit=True, connect_timeout=3.0, nodelay=True,
                 answer_pings=True):
        self.created = time.time()
        self.answer_pings = answer_pings
        self.check_sid = 0x100001  # stream ids for liveness checks, far from the attacks' ids
        self.sock = socket.create_connection((HOST, port), timeout=connect_timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.yamux = yamux
        self.auto_credit = auto_credit
        self.parser = FrameParser() if yamux else None
        self.raw = bytearray()          # everything received (plain mode)
        self.rx = 0
        self.closed = None              # "EOF", "ECONNRESET", ... once the server ended it
        self.closed_at = None
        self.send_error = None
        self.goaways = []
        self.rst = set()
        self.acked = set()
        self.fin = set()
        self.data = collections.defaultdict(bytearray)
        self.data_bytes = 0
        self.ping_acks = []
        self.pings_from_server = 0
        self.frame_counts = collections.Counter()
        self.bad_frames = 0
        self.send_win = collections.defaultdict(lambda: WINDOW)
        self.next_sid = 1
        self.keep_data = True
        if preamble:
            self.send(preamble)

    # sending -----------------------------------------------------------------
    def send(self, data, timeout=2.0):
        """Sends all of data within timeout. Returns None or why it failed
        ('timeout' means the server stopped taking bytes)."""
        if self.send_error:
            return self.send_error
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while len(view):
            try:
                sent = self.sock.send(view)
                view = view[sent:]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                writable = wait_socket(self.sock, writable=True, timeout=min(remaining, 0.2))
                if not writable and self.yamux:
                    self.read_available()  # keep answering pings while blocked
            except OSError as error:
                self.send_error = errno_name(error)
                return self.send_error
        return None

    def open_stream(self, first=b"", nomad=False, sid=None):
        if sid is None:
            sid = self.next_sid
            self.next_sid += 2
        payload = (b"\x01" if nomad else b"") + first
        out = frame(WU, SYN, sid, 0)
        if payload:
            out += data_frame(sid, payload)
            self.send_win[sid] -= len(payload)
        self.send(out)
        return sid

    def send_data(self, sid, payload, flags=0):
        self.send_win[sid] -= len(payload)
        return self.send(data_frame(sid, payload, flags))

    # receiving ---------------------------------------------------------------
    def read_available(self, limit=1 << 26):
        """Reads what the socket has now (up to limit bytes). Returns bytes read."""
        got = 0
        while self.closed is None and got < limit:
            try:
                chunk = self.sock.recv(262144)
            except BlockingIOError:
                break
            except OSError as error:
                self._end(errno_name(error))
                break
            if not chunk:
                self._end("EOF")
                break
            got += len(chunk)
            self.rx += len(chunk)
            if self.yamux:
                self.parser.feed(chunk)
                for fr in self.parser.frames():
                    self._frame(*fr)
            elif self.keep_data:
                self.raw += chunk
        return got

    def _end(self, how):
        if self.closed is None:
            self.closed = how
            self.closed_at = time.time()

    def _frame(self, version, typ, flags, sid, length, payload):
        if version != 0 or typ > 3:
            self.bad_frames += 1
            return
        self.frame_counts[(typ, flags)] += 1
        if typ == PING:
            if flags & SYN:
                self.pings_from_server += 1
                if self.answer_pings:
                    self.send(frame(PING, ACK, 0, length), timeout=0.5)
            elif flags & ACK:
                self.ping_acks.append(length)
            return
        if typ == GOAWAY:
            self.goaways.append(length)
            return
        if flags & ACK:
            self.acked.add(sid)
        if flags & RST:
            self.rst.add(sid)
        if typ == WU:
            self.send_win[sid] += length
        if typ == DATA and length:
            self.data_bytes += length
            if self.keep_data:
                self.data[sid] += payload
            if self.auto_credit:
                self.send(frame(WU, 0, sid, length), timeout=0.5)
        if flags & FIN:
            self.fin.add(sid)

    def pump(self, timeout, until=None):
        """Reads until until() holds, the server ends the connection, or timeout.
        Returns whether until() held."""
        deadline = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return True
            if self.closed is not None:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if wait_socket(self.sock, timeout=min(remaining, 0.05)):
                self.read_available()

    def responses(self, sid=None):
        buf = self.data.get(sid, b"") if self.yamux else self.raw
        try:
            return parse_responses(buf)[0]
        except MsgpackError:
            return [("not msgpack", None)]

    # reporting ---------------------------------------------------------------
    def describe(self):
        """What the server did on this connection, in a few words."""
        parts = []
        if self.goaways:
            parts.append("GoAway(" + ",".join(map(str, self.goaways)) + ")")
        if self.rst:
            parts.append(f"RST x{len(self.rst)}" if len(self.rst) > 1 else f"RST(stream {min(self.rst)})")
        answered = 0
        if self.yamux:
            for sid in self.data:
                answered += len(self.responses(sid))
        else:
            answered = len(self.responses())
        if answered:
            parts.append(f"answered x{answered}" if answered > 1 else "answered")
        elif (self.data_bytes if self.yamux else len(self.raw)):
            parts.append("sent bytes")
        if self.fin:
            parts.append("FIN" if len(self.fin) == 1 else f"FIN x{len(self.fin)}")
        if self.ping_acks:
            parts.append("Ping-ACK" if len(self.ping_acks) == 1 else f"Ping-ACK x{len(self.ping_acks)}")
        if self.bad_frames:
            parts.append(f"{self.bad_frames} bad frames")
        if self.closed == "EOF":
            parts.append("closed")
        elif self.closed:
            parts.append(f"closed ({self.closed})")
        elif self.send_error:
            parts.append(f"send failed ({self.send_error})")
        else:
            parts.append("open")
        return "+".join(parts)

    def close(self, rst=False):
        try:
            if rst:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


def pump_many(conns, timeout, until=None):
    """Reads from many RawConns at once (epoll) until until() holds, all are closed, or timeout."""
    sel = selectors.DefaultSelector()
    live = {}
    for conn in conns:
        if conn.closed is None:
            try:
                sel.register(conn.sock, selectors.EVENT_READ, conn)
                live[conn.sock.fileno()] = conn
            except (ValueError, OSError):
                pass
    deadline = time.monotonic() + timeout
    try:
        while live:
            if until is not None and until():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in sel.select(min(remaining, 0.05)):
                conn = key.data
                conn.read_available()
                if conn.closed is not None:
                    sel.unregister(conn.sock)
                    live.pop(key.fd, None)
        return until() if until is not None else False
    finally:
        sel.close()


def tally(conns):
    counts = collections.Counter(conn.describe() for conn in conns)
    return ", ".join(f"{what} x{n}" for what, n in counts.most_common())


def close_all(conns, rst=False):
    for conn in conns:
        conn.close(rst=rst)


# ---------------------------------------------------------------------------
# Probes: does the server still serve, in each mode?
# ---------------------------------------------------------------------------


def probe(port, mode, timeout=5.0):
    """Status.Ping and a 1 KiB Echo on a fresh connection. Returns (ok, what happened)."""
    payload = os.urandom(1024)
    conn = None
    try:
        if mode == "plain":
            conn = RawConn(port, b"\x00")
            conn.send(rpc_request("Status.Ping", 1, {}) + rpc_request("Echo.Echo", 2, {"Msg": payload}))
            conn.pump(timeout, until=lambda: len(conn.responses()) >= 2)
            got = conn.responses()
        else:
            conn = RawConn(port, b"\x04" if mode == "consul" else b"\x06", yamux=True)
            sid = conn.open_stream(rpc_request("Status.Ping", 1, {}) + rpc_request("Echo.Echo", 2, {"Msg": payload}),
                                   nomad=(mode == "nomad"))
            conn.pump(timeout, until=lambda: len(conn.responses(sid)) >= 2)
            got = conn.responses(sid)
        if len(got) < 2:
            return False, f"{mode}: no answer in {timeout:.0f} s ({conn.describe()})"
        (h1, _), (h2, b2) = got[:2]
        if not isinstance(h1, dict) or h1.get("Error") or not isinstance(h2, dict) or h2.get("Error"):
            return False, f"{mode}: error answer {h1!r} {h2!r}"
        if msg_bytes(b2) != payload:
            return False, f"{mode}: Echo answered with other bytes"
        return True, f"{mode}: ok"
    except OSError as error:
        return False, f"{mode}: {errno_name(error)}"
    finally:
        if conn:
            conn.close()


def probe_all(port):
    results = [probe(port, mode) for mode in ("consul", "nomad", "plain")]
    return all(ok for ok, _ in results), "; ".join(text for _, text in results)


# ---------------------------------------------------------------------------
# The server process and its measurements
# ---------------------------------------------------------------------------


class Server:
    def __init__(self, path, extra_args):
        self.path = path
        self.command = [path, "--host", HOST, "--port", "0"] + list(extra_args)
        self.proc = None
        self.port = None
        self.stdout_tail = collections.deque(maxlen=200)
        self.stderr_tail = collections.deque(maxlen=200)

    def start(self, timeout=60.0):
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, errors="replace")
        found = threading.Event()

        def drain_stdout():
            for line in self.proc.stdout:
                self.stdout_tail.append(line.rstrip("\n"))
                match = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
                if match and self.port is None:
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        def drain_stderr():
            for line in self.proc.stderr:
                self.stderr_tail.append(line.rstrip("\n"))

        threading.Thread(target=drain_stdout, daemon=True).start()
        threading.Thread(target=drain_stderr, daemon=True).start()
        found.wait(timeout)
        if self.port is None:
            self.kill()
            raise RuntimeError(f"{self.path} did not print 'listening on 127.0.0.1:PORT' within {timeout:.0f} s; "
                               f"stderr: {' | '.join(self.stderr_tail)}")
        return self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return None

    def threads(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/task"))
        except OSError:
            return None

    def stop(self, timeout=20.0):
        """SIGINT, then SIGKILL after timeout. Returns (exit code, how, seconds)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None, "already exited", 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
            return code, "SIGINT", time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode, f"SIGKILL (no exit {timeout:.0f} s after SIGINT)", time.monotonic() - started

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


class RSSSampler(threading.Thread):
    def __init__(self, server, interval=0.02):
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.samples = collections.deque(maxlen=200000)  # (time, kB)
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            rss = self.server.rss_kb()
            if rss is not None:
                self.samples.append((time.time(), rss))
            self.stop_event.wait(self.interval)

    def peak(self, start, end):
        values = [kb for t, kb in list(self.samples) if start <= t <= end]
        return max(values) if values else None

    def latest(self):
        return self.samples[-1][1] if self.samples else self.server.rss_kb()


# ---------------------------------------------------------------------------
# Healthy clients
# ---------------------------------------------------------------------------


class BinaryClientLoop(threading.Thread):
    """Runs muxrpc-client in consul, nomad and plain mode in turn until stopped,
    at most max_runs runs, each within run_timeout."""

    def __init__(self, path, port, calls, max_runs, run_timeout):
        super().__init__(daemon=True)
        self.path, self.port, self.calls = path, port, calls
        self.max_runs, self.run_timeout = max_runs, run_timeout
        self.runs = []  # dicts: mode, start, end, rc, calls, ok, errors, line
        self.stop_event = threading.Event()
        self.current = None

    def run(self):
        modes = ["consul", "nomad", "plain"]
        for index in range(self.max_runs):
            if self.stop_event.is_set():
                break
            mode = modes[index % 3]
            command = [self.path, "--addr", f"{HOST}:{self.port}", "--calls", str(self.calls),
                       "--concurrency", "8", "--payload", "64", "--mode", mode]
            started = time.time()
            record = {"mode": mode, "start": started}
            try:
                self.current = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                                errors="replace")
                out, err = self.current.communicate(timeout=self.run_timeout)
                record["rc"] = self.current.returncode
            except subprocess.TimeoutExpired:
                self.current.kill()
                out, err = self.current.communicate()
                record["rc"] = "timeout"
            except OSError as error:
                out, err = "", str(error)
                record["rc"] = "could not run"
            self.current = None
            record["end"] = time.time()
            line = (out or "").strip().splitlines()[-1] if (out or "").strip() else ""
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            record["calls"] = int(fields.get("calls", 0) or 0)
            record["ok"] = int(fields.get("ok", 0) or 0)
            parsed_errors = int(fields.get("errors", 0) or 0)
            failed = record["rc"] != 0
            record["errors"] = max(parsed_errors, 1 if failed else 0)
            record["line"] = line or (err or "").strip()[-300:]
            record["stderr"] = (err or "").strip()[-300:]
            self.runs.append(record)

    def stop(self, timeout):
        self.stop_event.set()
        self.join(timeout)
        current = self.current
        if self.is_alive() and current is not None:
            current.kill()
            self.join(5)


class PythonClientMonitor(threading.Thread):
    """Runs this script's --healthy-python mode in a child process and collects its reports."""

    def __init__(self, port, seconds):
        super().__init__(daemon=True)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--healthy-python", str(port),
                                      "--healthy-seconds", str(int(seconds))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.oks = []     # (time, n)
        self.errors = []  # (time, text)
        self.stderr = ""

    def run(self):
        for line in self.proc.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            if "ok" in report:
                self.oks.append((report["t"], report["ok"]))
            if "error" in report:
                self.errors.append((report["t"], report["error"]))

    def stop(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.join(5)
        self.stderr = self.proc.stderr.read()[-2000:] if self.proc.stderr else ""


class HealthySession:
    """A yamux session for the healthy Python client: a reader thread, per-stream
    buffers and windows, pings answered."""

    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.sock.sendall(b"\x04")
        self.cv = threading.Condition()
        self.wlock = threading.Lock()
        self.streams = {}
        self.next_sid = 1
        self.dead = None
        self.parser = FrameParser()
        threading.Thread(target=self._reader, daemon=True).start()

    def _send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def _reader(self):
        try:
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise ConnectionError("EOF from server")
                self.parser.feed(chunk)
                for version, typ, flags, sid, length, payload in self.parser.frames():
                    self._frame(version, typ, flags, sid, length, payload)
        except Exception as error:  # the session is over, whatever ended it
            with self.cv:
                self.dead = self.dead or f"session ended: {errno_name(error) if isinstance(error, OSError) else error}"
                self.cv.notify_all()

    def _frame(self, version, typ, flags, sid, length, payload):
        if version != 0:
            raise ConnectionError(f"frame with version {version} from server")
        if typ == PING:
            if flags & SYN:
                self._send(frame(PING, ACK, 0, length))
            return
        if typ == GOAWAY:
            with self.cv:
                self.dead = f"GoAway({length}) from server"
                self.cv.notify_all()
            return
        with self.cv:
            stream = self.streams.get(sid)
            if stream is None:
                return
            if typ == WU:
                stream["win"] += length
            elif typ == DATA:
                stream["buf"] += payload
            if flags & RST:
                stream["rst"] = True
            if flags & FIN:
                stream["fin"] = True
            self.cv.notify_all()

    def open(self):
        with self.cv:
            sid = self.next_sid
            self.next_sid += 2
            self.streams[sid] = {"win": WINDOW, "buf": bytearray(), "rst": False, "fin": False, "credit": 0}
        self._send(frame(WU, SYN, sid, 0))
        return sid

    def reset(self, sid):
        try:
            self._send(frame(WU, RST, sid, 0))
        except OSError:
            pass
        with self.cv:
            self.streams.pop(sid, None)

    def _broken(self, stream):
        if self.dead:
            return self.dead
        if stream["rst"]:
            return "stream reset by server"
        if stream["fin"]:
            return "stream closed (FIN) by server"
        return None

    def call(self, sid, method, seq, args, timeout):
        deadline = time.monotonic() + timeout
        request = rpc_request(method, seq, args)
        stream = self.streams[sid]
        off = 0
        while off < len(request):
            with self.cv:
                while stream["win"] <= 0:
                    if self._broken(stream):
                        raise RuntimeError(self._broken(stream))
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(f"no send window from server within {timeout} s")
                    self.cv.wait(remaining)
                n = min(stream["win"], len(request) - off, 65536)
                stream["win"] -= n
            self._send(data_frame(sid, request[off:off + n]))
            off += n
        credit = 0
        with self.cv:
            while True:
                try:
                    header, middle = mp_unpack(stream["buf"])
                    body, end = mp_unpack(stream["buf"], middle)
                    break
                except NeedMore:
                    pass
                if self._broken(stream):
                    raise RuntimeError(self._broken(stream))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer within {timeout} s")
                self.cv.wait(remaining)
            del stream["buf"][:end]
            stream["credit"] += end
            if stream["credit"] >= WINDOW // 2:
                credit, stream["credit"] = stream["credit"], 0
        if credit:
            self._send(frame(WU, 0, sid, credit))
        return header, body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def healthy_python_main(port, seconds):
    """The healthy Python client: 4 workers, each on its own long-lived stream of one
    long-lived Consul session, Echo calls with checked answers. Reports JSON lines."""
    stop = threading.Event()
    out_lock = threading.Lock()
    counts = {"ok": 0}
    session_lock = threading.Lock()
    state = {"session": None, "made": 0.0}
    end = time.monotonic() + seconds

    def emit(obj):
        obj["t"] = time.time()
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    def current_session():
        with session_lock:
            session = state["session"]
            if session is not None and not session.dead:
                return session
            if session is not None:
                session.close()
            wait = 0.2 - (time.monotonic() - state["made"])
            if wait > 0:
                time.sleep(wait)
            state["made"] = time.monotonic()
            try:
                state["session"] = HealthySession(port)
            except OSError as error:
                state["session"] = None
                raise RuntimeError(f"connect failed: {errno_name(error)}")
            return state["session"]

    def worker(index):
        rng = random.Random(index)
        session, sid, seq = None, None, 0
        while not stop.is_set() and time.monotonic() < end:
            try:
                if session is None or session.dead or sid is None:
                    session = current_session()
                    sid = session.open()
                seq += 1
                size = rng.choice([0, 1, 16, 64, 64, 512, 1000, 4096, 16384, 65536])
                payload = rng.randbytes(size)
                header, body = session.call(sid, "Echo.Echo", seq, {"Msg": payload}, timeout=10.0)
                if not isinstance(header, dict) or header.get("Error"):
                    raise RuntimeError(f"error answer: {header!r}")
                if header.get("Seq") != seq or header.get("ServiceMethod") != "Echo.Echo":
                    raise RuntimeError(f"answer to another call: {header!r} (expected Seq {seq})")
                if msg_bytes(body) != payload:
                    raise RuntimeError(f"Echo of {size} bytes answered with different bytes")
                with out_lock:
                    counts["ok"] += 1
                # Now and then a new stream, as a pool replaces a broken one (not churn).
                if seq % 500 == 0:
                    session.reset(sid)
                    sid = session.open()
            except Exception as error:  # every failure is a healthy-client error
                emit({"error": f"worker {index} call {seq}: {error}"})
                if session is not None and sid is not None:
                    session.reset(sid)
                sid = None
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()

    def watch_stdin():
        try:
            sys.stdin.read()
        except OSError:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.is_set() and time.monotonic() < end:
        stop.wait(0.25)
        with out_lock:
            n, counts["ok"] = counts["ok"], 0
        if n:
            emit({"ok": n})
    stop.set()
    for thread in threads:
        thread.join(12)
    with out_lock:
        n = counts["ok"]
    if n:
        emit({"ok": n})
    return 0


# ---------------------------------------------------------------------------
# Attack classes. Each returns a Result; the runner measures around it.
# ---------------------------------------------------------------------------


class Result:
    def __init__(self, sent):
        self.sent = sent
        self.outcome = ""
        self.notes = []
        self.surprises = []  # behaviour against the docs, or a defect


class Ctx:
    def __init__(self, args, port, server, sampler, rng):
        self.args, self.port, self.server, self.sampler, self.rng = args, port, server, sampler, rng
        self.short = args.short
        self.dur = args.duration_per_class
        self.rss_start_kb = None

    def rss_over_guard(self):
        rss = self.sampler.latest()
        return rss is not None and self.rss_start_kb is not None and \
            rss - self.rss_start_kb > self.args.rss_guard_mb * 1024

    def n(self, full, short):
        return short if self.short else full


def echo_request(seq, size, fill=b"\xab"):
    return rpc_request("Echo.Echo", seq, {"Msg": fill * size})


def check_session_serves(conn, nomad=False, timeout=2.0):
    """On a yamux connection still open: does a fresh stream get a Status.Ping answered?"""
    if conn.closed is not None or conn.send_error:
        return None
    sid = conn.open_stream(rpc_request("Status.Ping", 77, {}), nomad=nomad, sid=conn.check_sid)
    conn.check_sid += 2
    conn.pump(timeout, until=lambda: conn.responses(sid) or sid in conn.rst)
    got = conn.responses(sid)
    if got and isinstance(got[0][0], dict) and not got[0][0].get("Error"):
        return True
    return False


# --- 1. random bytes after each preamble -----------------------------------

def cls_random_bytes(ctx):
    res = Result("random bytes (1 B-64 KiB) after 0x00, 0x04, 0x06, and with no preamble "
                 "(first byte not 0x00/0x04/0x06), batches of 32 connections, each watched 0.25 s")
    per = ctx.dur / 4
    cap = ctx.n(600, 60)
    summaries = []
    for label, preamble in (("0x00", b"\x00"), ("0x04", b"\x04"), ("0x06", b"\x06"), ("none", None)):
        end = time.monotonic() + per
        conns_done = []
        while time.monotonic() < end and len(conns_done) < cap:
            batch = []
            for _ in range(32):
                size = ctx.rng.choice([1, 2, 5, 12, 13, 24, 100, 1000, 4096, 65536])
                body = ctx.rng.randbytes(size)
                if preamble is None:
                    first = ctx.rng.choice([b for b in range(256) if b not in (0, 4, 6)])
                    payload = bytes([first]) + body
                else:
                    payload = preamble + body
                try:
                    conn = RawConn(ctx.port, yamux=(preamble in (b"\x04", b"\x06")))
                except OSError as error:
                    res.surprises.append(f"{label}: connect failed: {errno_name(error)}")
                    continue
                conn.keep_data = True
                conn.send(payload, timeout=1.0)
                batch.append(conn)
            pump_many(batch, 0.25 if not ctx.short else 0.15)
            conns_done.extend(batch)
            close_all(batch)
        counts = collections.Counter(_random_outcome(c) for c in conns_done)
        text = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        summaries.append(f"{label}: {len(conns_done)} conns: {text}")
        if any(c.bad_frames for c in conns_done):
            res.surprises.append(f"{label}: server sent frames with a bad version/type")
    res.sent += f"; {sum(int(s.split(': ')[1].split()[0]) for s in summaries)} connections"
    res.outcome = " / ".join(summaries)
    res.notes.append("'open' = the server was still waiting for more bytes when we closed "
                     "(a lying length, or an incomplete header)")
    return res


def _random_outcome(conn):
    if conn.yamux:
        parts = []
        if conn.goaways:
            parts.append(f"GoAway({conn.goaways[0]})")
        if conn.rst:
            parts.append("RST")
        if conn.acked:
            parts.append("ACK")
        if conn.ping_acks:
            parts.append("Ping-ACK")
    else:
        parts = ["answered"] if conn.raw else []
    parts.append({None: "open", "EOF": "closed"}.get(conn.closed, f"closed({conn.closed})")
                 if not conn.send_error or conn.closed else f"send {conn.send_error}")
    return "+".join(parts)


# --- 2. mutated yamux frames -----------------------------------------------

def _mutation_cases():
    req = rpc_request("Status.Ping", 1, {})
    echo = echo_request(1, 100)
    big = echo_request(1, 300 * 1024)
    c = []
    # (name, bytes after 0x04, expected per Docs/yamux.md, then-send callback or None)
    c.append(("version 1 (ping)", frame(PING, SYN, 0, 1, version=1), "GoAway(1)+closed"))
    c.append(("version 255 (data)", frame(DATA, 0, 1, 0, version=255), "GoAway(1)+closed"))
    c.append(("type 4", frame(4, 0, 1, 0), "GoAway(1)+closed"))
    c.append(("type 255 with length 100", frame(255, SYN, 1, 100), "GoAway(1)+closed"))
    c.append(("data on unknown stream 99 (no SYN)", data_frame(99, req), "ignored, serves"))
    c.append(("WindowUpdate ACK on unknown stream 101", frame(WU, ACK, 101, 1000), "ignored, serves"))
    c.append(("FIN on unknown stream 103", frame(WU, FIN, 103, 0), "ignored, serves"))
    c.append(("RST on unknown stream 105", frame(WU, RST, 105, 0), "ignored, serves"))
    c.append(("flags 0xFFF0 (unknown bits) on unknown stream 107", frame(WU, 0xFFF0, 107, 0), "ignored, serves"))
    c.append(("SYN on even id 2", frame(WU, SYN, 2, 0) + data_frame(2, req), "RST(stream 2), serves"))
    c.append(("SYN on id 0", frame(WU, SYN, 0, 0), "RST(stream 0), serves"))
    c.append(("duplicate SYN on stream 1", frame(WU, SYN, 1, 0) + frame(WU, SYN, 1, 0), "GoAway(1)+closed"))
    c.append(("SYN, FIN, FIN again (one write)", frame(WU, SYN, 1, 0) + frame(WU, FIN, 1, 0) + frame(WU, FIN, 1, 0),
              "GoAway(1)+closed"))
    def fin_twice(conn):
        conn.send(frame(WU, SYN, 1, 0) + data_frame(1, req) + frame(WU, FIN, 1, 0))
        conn.pump(1.0, until=lambda: 1 in conn.fin)
        waited = 1 in conn.fin
        conn.send(frame(WU, FIN, 1, 0))
        return "" if waited else " (no server FIN 1 s after the answer, so our 2nd FIN came in remoteClosed)"
    c.append(("SYN, request, FIN; after the answer (and the server's FIN, if it comes within 1 s) FIN again",
              fin_twice, "answered+FIN, 2nd FIN ignored (stream gone), serves"))
    c.append(("SYN, FIN, then data (one write)", frame(WU, SYN, 1, 0) + frame(WU, FIN, 1, 0) + data_frame(1, req),
              "GoAway(1)+closed"))
    c.append(("data with SYN|FIN in one frame (request)", data_frame(1, req, SYN | FIN), "answered+FIN"))
    c.append(("window overrun: data length 256 KiB + 1", frame(WU, SYN, 1, 0) + frame(DATA, 0, 1, WINDOW + 1)
              + b"\0" * 1000, "GoAway(1)+closed"))
    big400 = echo_request(1, 400 * 1024)
    c.append(("window overrun: a 400 KiB Echo as 2 x 200 KiB frames in one write", frame(WU, SYN, 1, 0)
              + data_frame(1, big400[:200 * 1024]) + data_frame(1, big400[200 * 1024:]),
              "GoAway(1)+closed, or answered if the first 200 KiB was credited before the second header"))
    c.append(("data length 0xFFFFFFFF", frame(WU, SYN, 1, 0) + frame(DATA, 0, 1, 0xFFFFFFFF) + b"x" * 100,
              "GoAway(1)+closed"))
    c.append(("data length 0xFFFFFFFF on unknown stream", frame(DATA, 0, 9, 0xFFFFFFFF) + b"x" * 100,
              "GoAway(1)+closed"))
    lie = b"\x82\xadServiceMethod\xd9\xc8"  # a header whose ServiceMethod is a 200-byte str8
    c.append(("lying length: header says 1000, 17 sent (a request's start), then a Ping", frame(WU, SYN, 1, 0)
              + frame(DATA, 0, 1, 1000) + lie + frame(PING, SYN, 0, 42),
              "open, waiting (the Ping and the liveness check are payload)"))
    def huge_delta(conn):
        conn.send(frame(WU, SYN, 1, 0) + frame(WU, 0, 1, 0xFFFFFFFF) + frame(WU, 0, 1, 0xFFFFFFFF))
        conn.send_data(1, big[:200000])
        # The rest only once the server credits its window (we must not overrun it).
        conn.pump(2.0, until=lambda: conn.send_win[1] >= len(big) - 200000 or conn.closed is not None)
        if conn.send_win[1] >= len(big) - 200000:
            conn.send(data_frame(1, big[200000:]))
            return ""
        return " (the server never credited our first 200 KB)"
    c.append(("window update delta 0xFFFFFFFF twice, then a 300 KiB Echo (within the server's window)", huge_delta,
              "answered (the server's send window saturates, no wrap)"))
    c.append(("Ping SYN value 0xDEADBEEF", frame(PING, SYN, 0, 0xDEADBEEF), "Ping-ACK 0xDEADBEEF, serves"))
    c.append(("Ping ACK unsolicited", frame(PING, ACK, 0, 5), "ignored, serves"))
    c.append(("Ping on stream 5 with flags SYN|FIN|RST", frame(PING, SYN | FIN | RST, 5, 7), "Ping-ACK, serves"))
    c.append(("Ping with flags 0 (neither SYN nor ACK)", frame(PING, 0, 0, 9), "ignored, serves"))
    c.append(("GoAway(0) from the client, then a call", frame(GOAWAY, 0, 0, 0), "serves"))
    c.append(("GoAway(1) from the client", frame(GOAWAY, 0, 0, 1), "closed"))
    c.append(("GoAway(2) from the client", frame(GOAWAY, 0, 0, 2), "closed"))
    c.append(("GoAway(99) from the client", frame(GOAWAY, 0, 0, 99), "closed"))
    c.append(("SYN|ACK on a new stream", frame(WU, SYN | ACK, 1, 0) + data_frame(1, req), "answered"))
    c.append(("SYN|RST on a new stream", frame(WU, SYN | RST, 1, 0) + data_frame(1, req), "stream gone, serves"))
    c.append(("SYN with window delta 0xFFFFFFFF + Echo", frame(WU, SYN, 1, 0xFFFFFFFF) + data_frame(1, echo),
              "answered"))
    c.append(("request then RST while the answer is made (Test.Sleep 300)", frame(WU, SYN, 1, 0)
              + data_frame(1, rpc_request("Test.Sleep", 1, {"Ms": 300})) + frame(WU, RST, 1, 0), "no answer, serves"))
    c.append(("RST twice on a stream", frame(WU, SYN, 1, 0) + frame(WU, RST, 1, 0) + frame(WU, RST, 1, 0),
              "serves"))
    c.append(("data after RST on the stream", frame(WU, SYN, 1, 0) + frame(WU, RST, 1, 0) + data_frame(1, req),
              "ignored, serves"))
    c.append(("zero-length data frame with FIN (plain half-close)", frame(WU, SYN, 1, 0) + data_frame(1, req)
              + frame(DATA, FIN, 1, 0), "answered+FIN"))
    c.append(("1000 empty data frames on one stream", frame(WU, SYN, 1, 0) + frame(DATA, 0, 1, 0) * 1000
              + data_frame(1, req), "answered"))
    c.append(("stream id 0xFFFFFFFF (odd) SYN + request", frame(WU, SYN, 0xFFFFFFFF, 0)
              + data_frame(0xFFFFFFFF, req), "answered"))
    return c


def cls_yamux_mutations(ctx):
    res = Result("0x04 then: named malformed frame sequences (bad version/type, flags on unknown streams, "
                 "SYN on even/zero id, duplicate SYN, FIN twice, data after FIN/RST, window overruns, "
                 "lying lengths, 0xFFFFFFFF deltas, client GoAways, odd pings), then random bit flips and "
                 "random headers on a valid stream")
    req = rpc_request("Status.Ping", 1, {})
    lines = []
    mismatches = 0
    cases = _mutation_cases()
    conns = []
    for name, payload, expected in cases:
        try:
            conn = RawConn(ctx.port, b"\x04", yamux=True)
        except OSError as error:
            res.surprises.append(f"{name}: connect failed {errno_name(error)}")
            continue
        conn.case = (name, expected)
        if callable(payload):
            conn.extra = payload(conn)
        else:
            error = conn.send(payload)
            conn.extra = f" (our send: {error})" if error else ""
        conns.append(conn)
    pump_many(conns, 0.5)
    for conn in conns:
        conn.first = conn.describe()
        if conn.closed is None and not conn.send_error:
            conn.check = conn.check_sid
            conn.check_sid += 2
            conn.send(frame(WU, SYN, conn.check, 0) + data_frame(conn.check, rpc_request("Status.Ping", 77, {})))
        else:
            conn.check = None
    pump_many(conns, 1.5, until=lambda: all(c.check is None or c.responses(c.check) or c.check in c.rst
                                              or c.closed is not None for c in conns))
    for conn in conns:
        name, expected = conn.case
        serves = None
        if conn.check is not None:
            got = conn.responses(conn.check)
            serves = bool(got and isinstance(got[0][0], dict) and not got[0][0].get("Error"))
        what = conn.first + ("" if serves is None else ("; then serves" if serves else "; then does NOT serve"))
        if conn.closed is not None and serves is not None:
            what += f" (then {conn.closed})"
        what += conn.extra
        matches = _matches(expected, conn, conn.first, serves)
        if not matches:
            mismatches += 1
        lines.append(f"{name}: {what} [docs: {expected}]{'' if matches else ' <- differs'}")
    close_all(conns)
    # Random bit flips on a valid exchange, and random headers, until the time is up.
    valid = frame(WU, SYN, 1, 0) + data_frame(1, echo_request(1, 64)) + frame(WU, FIN, 1, 0)
    flip_outcomes = collections.Counter()
    header_outcomes = collections.Counter()
    end = time.monotonic() + max(ctx.dur * 0.6, 1.0)
    flips = 0
    headers = 0
    cap = ctx.n(3000, 300)
    while time.monotonic() < end and flips + headers < cap:
        batch = []
        for i in range(24):
            try:
                conn = RawConn(ctx.port, b"\x04", yamux=True)
            except OSError as error:
                res.surprises.append(f"random case: connect failed {errno_name(error)}")
                break
            if i % 2 == 0:
                data = bytearray(valid)
                for _ in range(ctx.rng.randint(1, 4)):
                    bit = ctx.rng.randrange(len(data) * 8)
                    data[bit // 8] ^= 1 << (bit % 8)
                conn.send(bytes(data))
                conn.kind = "flip"
                flips += 1
            else:
                typ = ctx.rng.choice([0, 1, 2, 3, ctx.rng.randrange(256)])
                flags = ctx.rng.choice([0, SYN, ACK, FIN, RST, ctx.rng.randrange(65536)])
                sid = ctx.rng.choice([0, 1, 2, 3, ctx.rng.randrange(1 << 32)])
                length = ctx.rng.choice([0, 1, 12, 100, WINDOW, WINDOW + 1, ctx.rng.randrange(1 << 32)])
                body = ctx.rng.randbytes(min(length, 200)) if typ == DATA else b""
                conn.send(frame(typ, flags, sid, length, body) + frame(WU, SYN, 101, 0) + data_frame(101, req))
                conn.kind = "header"
                headers += 1
            batch.append(conn)
        pump_many(batch, 0.3)
        for conn in batch:
            key = "GoAway(%d)" % conn.goaways[0] if conn.goaways else ("answered" if any(
                conn.responses(s) for s in list(conn.data)) else ("RST" if conn.rst else "no answer"))
            key += "+" + ({None: "open", "EOF": "closed"}.get(conn.closed, conn.closed))
            (flip_outcomes if conn.kind == "flip" else header_outcomes)[key] += 1
        close_all(batch)
    res.outcome = (f"{len(cases)} named cases, {len(cases) - mismatches} as the docs say, {mismatches} differ "
                   f"(see details). Bit flips ({flips}): "
                   + ", ".join(f"{k} {v}" for k, v in flip_outcomes.most_common())
                   + f". Random header + valid call ({headers}): "
                   + ", ".join(f"{k} {v}" for k, v in header_outcomes.most_common()))
    res.notes.extend(lines)
    for line in lines:
        if line.endswith("<- differs"):
            res.surprises.append("mutation " + line)
    return res


def _matches(expected, conn, first, serves):
    if expected.startswith("GoAway(1)+closed, or answered"):
        return (1 in conn.goaways and conn.closed is not None) or ("answered" in first and serves is True)
    if expected.startswith("answered+FIN"):
        return "answered" in first and 1 in conn.fin and serves is True and not conn.goaways
    if expected.startswith("GoAway(1)+closed"):
        return 1 in conn.goaways and conn.closed is not None
    if expected == "closed":
        return conn.closed is not None
    if expected.startswith("RST(stream"):
        sid = int(expected.split("stream ")[1].split(")")[0])
        return sid in conn.rst and serves is True
    if expected.startswith("answered"):
        return "answered" in first and conn.closed is None
    if expected.startswith("open, waiting"):
        return conn.closed is None and "answered" not in first and not conn.ping_acks and not conn.goaways
    if expected.startswith("Ping-ACK 0xDEADBEEF"):
        return 0xDEADBEEF in conn.ping_acks and serves is True
    if expected.startswith("Ping-ACK"):
        return bool(conn.ping_acks) and serves is True
    if expected.startswith("no answer"):
        return "answered" not in first and serves is True
    return serves is True and not conn.goaways


# --- 3. SYN floods -----------------------------------------------------------

def cls_syn_flood(ctx):
    res = Result("one Consul session each: (1) 300 SYNs in one write (> acceptBacklog 256); (2) 5,000 SYNs in "
                 "writes of 200, each write's ACK/RST awaited (> maxConcurrentStreams 4096). Then a new stream, "
                 "FIN on the first half of the accepted streams and RST on the rest, a new stream again")
    parts = []
    for count, chunk in ((300, 300), (5000, 200)):
        conn = RawConn(ctx.port, b"\x04", yamux=True)
        sids = list(range(1, 2 * count, 2))
        ordinal = {sid: i + 1 for i, sid in enumerate(sids)}
        started = time.monotonic()
        deadline = started + max(ctx.dur, 3.0)
        for i in range(0, count, chunk):
            part = sids[i:i + chunk]
            conn.send(b"".join(frame(WU, SYN, sid, 0) for sid in part))
            conn.pump(max(0.1, deadline - time.monotonic()),
                      until=lambda: all(s in conn.acked or s in conn.rst for s in part))
            if conn.closed is not None or time.monotonic() > deadline:
                break
        seconds = time.monotonic() - started
        acked = len(conn.acked)
        refused = sorted(ordinal[s] for s in conn.rst if s in ordinal)
        text = f"{count} SYNs: ACK {acked}, RST {len(refused)}"
        if refused:
            text += f" (first RST at SYN #{refused[0]})"
        text += f" in {seconds:.2f} s"
        if conn.goaways:
            text += f", GoAway({conn.goaways})"
        serves_full = check_session_serves(conn, timeout=2.0)
        text += f"; a new stream meanwhile: {_yn(serves_full)}"
        if serves_full is False:
            text += f" ({'RST' if conn.check_sid - 2 in conn.rst else 'no answer'})"
        # Half-close half of them, reset the rest; the half-closed ones should get the server's FIN.
        acked_sids = [s for s in sids if s in conn.acked]
        half = acked_sids[:len(acked_sids) // 2]
        rest = acked_sids[len(acked_sids) // 2:]
        for i in range(0, len(half), 500):
            conn.send(b"".join(frame(WU, FIN, s, 0) for s in half[i:i + 500]))
        for i in range(0, len(rest), 500):
            conn.send(b"".join(frame(WU, RST, s, 0) for s in rest[i:i + 500]))
        half_set = set(half)
        conn.pump(ctx.n(2.0, 1.0), until=lambda: len((conn.fin | conn.rst) & half_set) >= len(half))
        fin_back = len(conn.fin & half_set)
        rst_back = len(conn.rst & half_set)
        text += f"; our FIN on {len(half)}: server FIN {fin_back}, RST {rst_back}"
        if conn.closed is None and fin_back + rst_back < len(half):
            res.surprises.append(f"SYN flood {count}: {len(half) - fin_back - rst_back} of {len(half)} accepted "
                                 f"streams the client half-closed got neither FIN nor RST from the server within "
                                 f"{ctx.n(2, 1)} s")
        serves_after = check_session_serves(conn, timeout=2.0)
        text += f"; our RST on {len(rest)}; a new stream after: {_yn(serves_after)}"
        if serves_after is not True:
            res.surprises.append(f"SYN flood {count}: after our FIN/RST on every flood stream, a new stream on "
                                 f"the same session is not served ({conn.describe()})")
        text += f"; session {'open' if conn.closed is None else conn.closed}"
        parts.append(text)
        conn.close()
    res.outcome = " / ".join(parts)
    return res


def _yn(value):
    return {True: "served", False: "NOT served", None: "(session gone)"}[value]


# --- 4. SYNs then close (accept backlog leak) -------------------------------

def cls_syn_then_close(ctx):
    per_round = ctx.n(1000, 300)
    res = Result(f"2 rounds of {per_round:,} connections closed with FIN, then {per_round // 2:,} closed with RST "
                 "(SO_LINGER 0); each connection, 50 at a time: 0x04 + 4 SYNs (ids 1,3,5,7), each SYN followed "
                 "by a Status.Ping request, then close at once without reading")
    payload = b"\x04" + b"".join(frame(WU, SYN, sid, 0) + data_frame(sid, rpc_request("Status.Ping", 1, {}))
                                 for sid in (1, 3, 5, 7))
    rounds = []
    failures = collections.Counter()
    for label, count, rst in (("FIN 1", per_round, False), ("FIN 2", per_round, False),
                              ("RST", per_round // 2, True)):
        fds_before = ctx.server.fds()
        time.sleep(0.2)
        rss_before = ctx.sampler.latest()
        end = time.monotonic() + max(ctx.dur, 2.0) * 2
        done = 0
        while done < count and time.monotonic() < end:
            batch = []
            for _ in range(min(50, count - done)):
                try:
                    sock = socket.create_connection((HOST, ctx.port), timeout=3)
                    sock.sendall(payload)
                    batch.append(sock)
                except OSError as error:
                    failures[errno_name(error)] += 1
                done += 1
            for sock in batch:
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        time.sleep(ctx.n(1.5, 0.7))
        rounds.append((label, done, rss_before, ctx.sampler.latest(), fds_before, ctx.server.fds()))
    texts = []
    growth = {}
    for label, done, rss_before, rss_after, fds_before, fds_after in rounds:
        grown = (rss_after - rss_before) if rss_before and rss_after else 0
        growth[label] = (grown, done)
        texts.append(f"{label}: {done:,} conns, RSS {_mb(rss_before)} -> {_mb(rss_after)} MB "
                     f"({grown / max(done, 1):+.1f} KB/conn), server fds {fds_before} -> {fds_after}")
    res.outcome = "nothing read back (closed at once); " + "; ".join(texts)
    if failures:
        res.surprises.append(f"SYN-then-close: connect/send failures {dict(failures)}")
    fin1, fin2 = growth.get("FIN 1", (0, 1)), growth.get("FIN 2", (0, 1))
    if fin1[0] > 2048 and fin2[0] > 2048:
        res.surprises.append(f"SYN-then-close: RSS grew {fin1[0] / 1024:.1f} MB and again {fin2[0] / 1024:.1f} MB "
                             f"over two equal rounds of {per_round:,} FIN-closed connections "
                             f"(~{(fin1[0] + fin2[0]) / (fin1[1] + fin2[1]):.1f} KB per connection, not returned)")
    elif fin2[0] > 2048:
        res.surprises.append(f"SYN-then-close: RSS grew {fin2[0] / 1024:.1f} MB in the second round of "
                             f"{per_round:,} FIN-closed connections")
    fd_growth = [r[5] - r[4] for r in rounds if r[4] is not None and r[5] is not None]
    if any(g > 50 for g in fd_growth):
        res.surprises.append(f"SYN-then-close: server fds grew by {fd_growth} per round (connections not closed)")
    res.notes.append("RSS only shows memory beyond the free heap left by earlier classes, so this class runs early")
    return res


def _sysctl_max(path):
    try:
        with open(path) as handle:
            return int(handle.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return 32 << 20


def _mb(kb):
    return "?" if kb is None else f"{kb / 1024:.1f}"


# --- 5. ping flood without reading --------------------------------------------

def cls_ping_flood(ctx):
    res = Result("one Consul session: Ping SYN frames in writes of 2,000 (24 KB), never reading, until the "
                 "server stops taking bytes / closes / the time is up; then read back what it sent")
    conn = RawConn(ctx.port, b"\x04", yamux=True)
    batch = b"".join(frame(PING, SYN, 0, i) for i in range(2000))
    sent = 0
    stopped = "time up"
    end = time.monotonic() + ctx.dur
    cap = ctx.n(5_000_000, 1_000_000)
    while time.monotonic() < end and sent < cap:
        error = _send_noread(conn, batch, 1.0)
        if error:
            stopped = "our send blocked 1 s (server stopped reading)" if error == "timeout" else f"send failed: {error}"
            break
        sent += 2000
    held_at = time.time()
    # Hold a moment (RSS measured meanwhile), then read back.
    time.sleep(min(1.0, ctx.dur / 4))
    conn.pump(3.0, until=lambda: conn.closed is not None)
    acks = len(conn.ping_acks)
    res.outcome = (f"{sent:,} pings sent ({sent * 12 / 1e6:.1f} MB); {stopped}; read back: {acks:,} Ping-ACKs, "
                   f"GoAway {conn.goaways or 'none'}, end: {conn.closed or 'open'}"
                   + (f" {conn.closed_at - held_at:+.1f} s after we stopped sending" if conn.closed_at else ""))
    if conn.closed is not None and not conn.goaways:
        res.notes.append("closed without a GoAway (the docs: the session is closed, .controlFrameFlood)")
    if conn.closed is None and stopped == "time up":
        res.notes.append("the server answered every ping as fast as we sent them; the flood never made it unwritable")
    conn.close()
    return res


def _send_noread(conn, data, timeout):
    """Sends without reading anything meanwhile (RawConn.send reads when blocked)."""
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while len(view):
        try:
            view = view[conn.sock.send(view):]
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            wait_socket(conn.sock, writable=True, timeout=min(remaining, 0.2))
        except OSError as error:
            return errno_name(error)
    return None


# --- 6. stream churn like a Go client ----------------------------------------

def cls_stream_churn(ctx):
    target = ctx.n(12000, 5000)
    budget = ctx.n(max(ctx.dur * 2, 8.0), 4.0)
    res = Result(f"one Consul session, up to {target:,} streams, 16 at a time, each: SYN + Echo(32 B) request, "
                 "read the answer, FIN, expect the server's FIN (as a Go client's stream)")
    conn = RawConn(ctx.port, b"\x04", yamux=True)
    inflight = {}     # sid -> (ordinal, started)
    await_fin = {}    # sid -> (ordinal, fin sent at)
    opened = answered = fins = 0
    failures = collections.Counter()
    first_failure = {}
    sid = 1
    end = time.monotonic() + budget
    payload = b"\x5a" * 32

    def fail(kind, ordinal):
        failures[kind] += 1
        first_failure.setdefault(kind, ordinal)

    while time.monotonic() < end and (opened < target or inflight):
        if conn.closed is not None or conn.goaways or conn.send_error:
            break
        out = bytearray()
        while len(inflight) < 16 and opened < target:
            opened += 1
            request = rpc_request("Echo.Echo", opened, {"Msg": payload})
            out += frame(WU, SYN, sid, 0) + data_frame(sid, request)
            inflight[sid] = (opened, time.monotonic())
            sid += 2
        if out:
            conn.send(bytes(out))
        rx = conn.rx
        conn.pump(0.05, until=lambda: conn.rx != rx)
        out = bytearray()
        now = time.monotonic()
        for s, (ordinal, started) in list(inflight.items()):
            if s in conn.rst:
                fail("RST instead of an answer", ordinal)
                del inflight[s]
                continue
            got = conn.responses(s)
            if got:
                header, body = got[0]
                if isinstance(header, dict) and not header.get("Error") and msg_bytes(body) == payload:
                    answered += 1
                else:
                    fail("wrong answer", ordinal)
                out += frame(WU, FIN, s, 0)
                await_fin[s] = (ordinal, now)
                del inflight[s]
                conn.data.pop(s, None)
            elif now - started > 5.0:
                fail("no answer in 5 s", ordinal)
                out += frame(WU, RST, s, 0)
                del inflight[s]
        if out:
            conn.send(bytes(out))
        for s in [s for s in await_fin if s in conn.fin]:
            fins += 1
            del await_fin[s]
        for s in [s for s in await_fin if s in conn.rst]:
            fail("RST instead of FIN after our FIN", await_fin[s][0])
            del await_fin[s]
    # The last FINs.
    conn.pump(2.0, until=lambda: all(s in conn.fin or s in conn.rst for s in await_fin))
    for s, (ordinal, _) in list(await_fin.items()):
        if s in conn.fin:
            fins += 1
        elif s in conn.rst:
            fail("RST instead of FIN after our FIN", ordinal)
        else:
            fail("no FIN from the server 2 s after ours", ordinal)
    ended = conn.closed or ("GoAway(%s)" % conn.goaways if conn.goaways else None)
    res.outcome = (f"{opened:,} streams opened, {answered:,} answered, {fins:,} closed by the server's FIN; failures: "
                   + (", ".join(f"{k} {v:,} (first at stream #{first_failure[k]:,})" for k, v in failures.items())
                      or "none")
                   + (f"; session ended: {ended}" if ended else "; session still open"))
    if failures:
        res.surprises.append("stream churn: " + ", ".join(
            f"{k}: {v:,}, first at stream #{first_failure[k]:,}" for k, v in failures.items()))
    if opened < target:
        res.notes.append(f"stopped at {opened:,} of {target:,} streams after {budget:.0f} s")
    conn.close()
    return res


# --- 7. slowloris ---------------------------------------------------------------

def cls_slowloris(ctx):
    k = ctx.n(40, 10)
    hold = ctx.args.slowloris_hold or ctx.n(max(ctx.dur, 6.5), 2.0)
    res = Result(f"{k} connections each, held {hold:.1f} s: (a) nothing at all; (b) 0x04 then Ping frames one "
                 "byte every 100 ms; (c) 0x04 + 6 of a header's 12 bytes; (d) 0x04 + SYN + data header claiming "
                 "1000 B, 10 B sent; (e) 0x00 then a Status.Ping request one byte every 100 ms; (f) 0x00 + str32 "
                 "header claiming 1 MiB, 100 B sent")
    ping = frame(PING, SYN, 0, 7)
    plain_req = rpc_request("Status.Ping", 1, {})
    variants = {
        "a nothing": (b"", None, False),
        "b 0x04 ping trickle": (b"\x04", ping * 100, True),
        "c 0x04 half header": (b"\x04" + frame(WU, SYN, 1, 0)[:6], None, True),
        "d 0x04 lying data length": (b"\x04" + frame(WU, SYN, 1, 0) + frame(DATA, 0, 1, 1000) + plain_req[:10],
                                     None, True),
        "e 0x00 request trickle": (b"\x00", plain_req * 10, False),
        "f 0x00 str32 1 MiB claimed": (b"\x00" + b"\x82\xadServiceMethod\xdb\x00\x10\x00\x00" + b"A" * 100,
                                       None, False),
    }
    conns = {name: [] for name in variants}
    started = time.time()
    for name, (first, _, yamux) in variants.items():
        for _ in range(k):
            try:
                # A slowloris answers nothing: not even the server's ping (which would
                # also complete a half-sent header).
                conn = RawConn(ctx.port, first, yamux=yamux, answer_pings=False)
                conn.trickle = 0
                conns[name].append(conn)
            except OSError as error:
                res.surprises.append(f"slowloris {name}: connect failed {errno_name(error)}")
    everything = [c for group in conns.values() for c in group]
    end = time.monotonic() + hold
    while time.monotonic() < end:
        for name, (_, trickle, _) in variants.items():
            if trickle is None:
                continue
            for conn in conns[name]:
                if conn.closed is None and conn.trickle < len(trickle):
                    conn.send(trickle[conn.trickle:conn.trickle + 1], timeout=0.2)
                    conn.trickle += 1
        pump_many(everything, 0.1)
    lines = []
    for name, group in conns.items():
        closed = [c for c in group if c.closed is not None]
        when = sorted(c.closed_at - c.created for c in closed)
        text = f"{name}: {len(closed)}/{len(group)} closed by server"
        if when:
            text += f" after {when[0]:.1f}-{when[-1]:.1f} s"
        extra = collections.Counter(c.describe() for c in group)
        text += " [" + ", ".join(f"{d}: {n} conns" for d, n in extra.most_common(3)) + "]"
        if name.startswith("e"):
            answers = [len(c.responses()) for c in group]
            text += f"; answers per conn {min(answers)}-{max(answers)}"
        lines.append(text)
    res.outcome = " / ".join(lines)
    res.notes.append(f"held from {time.strftime('%H:%M:%S', time.localtime(started))}; the server's documented "
                     "timeouts: 5 s for the preamble, then only the yamux keepalive (a ping every 30 s, 10 s to "
                     "answer) for a stalled session, and none for a plain connection; --slowloris-hold 45 shows the "
                     "keepalive")
    if not ctx.short:
        silent = conns["a nothing"]
        if silent and not all(c.closed for c in silent):
            res.surprises.append(f"slowloris: {sum(1 for c in silent if not c.closed)} connections that never sent "
                                 "a preamble were still open after the 5 s handshake timeout")
    close_all(everything)
    return res


# --- 8. never-reading clients ---------------------------------------------------

def cls_never_reading(ctx):
    send_s = ctx.n(3.0, 0.7)
    hold_s = ctx.n(2.0, 0.5)
    res = Result(f"pipelined 64 KiB Echo requests for {send_s:.1f} s, then held {hold_s:.1f} s open: "
                 "(a) Consul, 1 stream, yamux-level reader that honours the server's window updates but never "
                 "credits the answers (an app that never reads); (b) same on 16 streams; (c) same in Nomad mode; "
                 "(d) Consul, never reading the socket at all, 64 streams x 3 requests (within the initial windows); "
                 "(e) plain 0x00, never reading the socket, requests written until the server stops taking them")
    request = echo_request(1, 65536)
    lines = []
    guard_hit = []

    def after_close(conn):
        conn.close()
        time.sleep(ctx.n(1.0, 0.3))
        lines[-1] += f"; {_mb(ctx.sampler.latest())} MB {ctx.n(1.0, 0.3):g} s after we closed"

    def measure(label, t0, extra):
        t1 = time.time()
        peak = ctx.sampler.peak(t0, t1)
        lines.append(f"{label}: {extra}; server RSS peak {_mb(peak)} MB, {_mb(ctx.sampler.latest())} MB at the end "
                     "of the hold (socket still open)")

    # (a), (b), (c): yamux-level readers that never credit.
    for label, preamble, nomad, streams in (("a consul 1 stream", b"\x04", False, 1),
                                            ("b consul 16 streams", b"\x04", False, 16),
                                            ("c nomad 1 stream", b"\x06", True, 1)):
        t0 = time.time()
        conn = RawConn(ctx.port, preamble, yamux=True, auto_credit=False)
        conn.keep_data = False
        sids = [conn.open_stream(nomad=nomad) for _ in range(streams)]
        if nomad:
            for s in sids:
                conn.send_win[s] += 1  # the 0x01 byte went in the first data
        sent = 0
        end = time.monotonic() + send_s
        blocked = None
        while time.monotonic() < end and conn.closed is None and not conn.goaways:
            if ctx.rss_over_guard():
                guard_hit.append(label)
                break
            progressed = False
            for s in sids:
                if conn.send_win[s] >= len(request):
                    error = conn.send_data(s, request)
                    if error:
                        blocked = error
                        break
                    sent += 1
                    progressed = True
            if blocked:
                break
            conn.pump(0.01 if progressed else 0.05)
        time.sleep(hold_s)
        conn.read_available()
        credit = sum(conn.send_win[s] for s in sids)
        measure(label, t0, f"{sent:,} requests ({sent * 65.6 / 1024:.1f} MB) accepted by the server's window, "
                           f"answers received {conn.data_bytes / 1048576:.1f} MB (never credited), "
                           f"{'send ' + blocked if blocked else 'window closed' if credit < len(request) * len(sids) else 'window open'}"
                           f", GoAway {conn.goaways or 'none'}, end: {conn.closed or 'open'}")
        after_close(conn)
        # A bound for a server that stops taking a stream's requests once its answers cannot go
        # out: 256 KiB received but not consumed, 256 KiB of answers in our window, one answer
        # queued, the half-window credit granularity: about 10 requests a stream; 16 is generous.
        expected = streams * 16
        if sent > expected:
            res.surprises.append(f"never-reading {label}: the server kept crediting its receive window while its "
                                 f"answers could not be sent: {sent:,} x 64 KiB requests taken (bound ~{expected})")
    # (d) Consul, never reading the socket.
    t0 = time.time()
    conn = RawConn(ctx.port, b"\x04", yamux=True, auto_credit=False)
    sent = 0
    blocked = None
    for i in range(64):
        sid = 1 + 2 * i
        out = frame(WU, SYN, sid, 0) + (data_frame(sid, request) * 3)
        error = _send_noread(conn, out, 1.0)
        if error:
            blocked = error
            break
        sent += 3
    time.sleep(hold_s + 0.5)
    measure("d consul no socket reads", t0, f"{sent} requests written ({sent * 65.6 / 1024:.1f} MB of answers due)"
            + (f", send {blocked}" if blocked else ""))
    got = conn.pump(2.0, until=lambda: sum(len(conn.responses(s)) for s in list(conn.data)) >= sent)
    answers = sum(len(conn.responses(s)) for s in list(conn.data))
    lines[-1] += f"; reading afterwards: {answers}/{sent} answers, end {conn.closed or 'open'}"
    if not got and conn.closed is None:
        res.notes.append(f"d: only {answers}/{sent} answers within 2 s of reading again")
    after_close(conn)
    # (e) plain, never reading.
    t0 = time.time()
    conn = RawConn(ctx.port, b"\x00")
    conn.keep_data = False
    sent = 0
    blocked = None
    end = time.monotonic() + send_s
    while time.monotonic() < end:
        if ctx.rss_over_guard():
            guard_hit.append("e plain")
            break
        error = _send_noread(conn, echo_request(sent + 1, 65536), 1.0)
        if error:
            blocked = error
            break
        sent += 1
    time.sleep(hold_s)
    measure("e plain no socket reads", t0, f"{sent:,} requests written ({sent * 65.6 / 1024:.1f} MB)"
            + (f", then our send blocked 1 s (server stopped reading)" if blocked == "timeout" else
               f", send failed {blocked}" if blocked else ", never blocked"))
    conn.read_available(limit=1 << 30)
    lines[-1] += f"; {conn.rx / 1048576:.1f} MB of answers waiting when read, end {conn.closed or 'open'}"
    after_close(conn)
    # What the kernels can hold: our send buffer, the server's receive and send buffers (each at
    # most the sysctl maximum), plus 16 MB for what the server may hold while it stops reading.
    kernel = _sysctl_max("/proc/sys/net/ipv4/tcp_wmem") * 2 + _sysctl_max("/proc/sys/net/ipv4/tcp_rmem")
    bound = (kernel + (16 << 20)) // len(request)
    lines[-1] += f" (a server that stops reading when its answers back up: at most ~{bound:,} requests here)"
    if sent > bound:
        res.surprises.append(f"never-reading e plain: the server took {sent:,} x 64 KiB requests "
                             f"({sent * 65.6 / 1024:.0f} MB) from a client that never read an answer "
                             f"(kernel buffers explain at most ~{bound:,})")
    if guard_hit:
        res.surprises.append(f"never-reading: stopped by the RSS guard (+{ctx.args.rss_guard_mb} MB) in {guard_hit}")
    res.outcome = " / ".join(lines)
    return res


# --- 9. malformed net/rpc --------------------------------------------------------

def _malformed_cases():
    ok_args = {}
    ping = {"ServiceMethod": "Status.Ping", "Seq": 5}
    c = []
    c.append(("header is an array", mp_pack(["Status.Ping", 1]) + mp_pack({})))
    c.append(("header is an int", mp_pack(5) + mp_pack({})))
    c.append(("header is a str", mp_pack("Status.Ping") + mp_pack({})))
    c.append(("header is nil", mp_pack(None) + mp_pack({})))
    c.append(("header is an empty map", mp_pack({}) + mp_pack({})))
    c.append(("ServiceMethod as bin", mp_pack({"ServiceMethod": b"Status.Ping", "Seq": 5}) + mp_pack({})))
    c.append(("ServiceMethod as int", mp_pack({"ServiceMethod": 42, "Seq": 5}) + mp_pack({})))
    c.append(("ServiceMethod as ext", mp_pack({"ServiceMethod": Ext(1, b"Status.Ping"), "Seq": 5}) + mp_pack({})))
    c.append(("ServiceMethod 100 KB", mp_pack({"ServiceMethod": "S." + "x" * 100000, "Seq": 5}) + mp_pack({})))
    c.append(("Seq -1", mp_pack({"ServiceMethod": "Status.Ping", "Seq": -1}) + mp_pack({})))
    c.append(("Seq as str", mp_pack({"ServiceMethod": "Status.Ping", "Seq": "5"}) + mp_pack({})))
    c.append(("Seq as float", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 1.5}) + mp_pack({})))
    c.append(("Seq 2^64-1", mp_pack({"ServiceMethod": "Status.Ping", "Seq": (1 << 64) - 1}) + mp_pack({})))
    c.append(("header keys of odd types (int, nil, array, map, ext, float, bin, bool)",
              mp_pack(Pairs([(1, "x"), (None, 2), ([1, 2], 3), ({"k": 1}, 4), (Ext(5, b"ab"), 6), (1.5, 7),
                             (b"bin", 8), (True, 9), ("ServiceMethod", "Status.Ping"), ("Seq", 5)])) + mp_pack({})))
    c.append(("header key a timestamp ext (-1)", mp_pack(Pairs([(Ext(-1, b"\0" * 8), 1), ("ServiceMethod",
              "Status.Ping"), ("Seq", 5)])) + mp_pack({})))
    c.append(("Deadline as a str", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 5, "Deadline": "soon"})
              + mp_pack({})))
    c.append(("Deadline 2^64-1 (out of int64)", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 5,
                                                          "Deadline": (1 << 64) - 1}) + mp_pack({})))
    c.append(("Deadline 1 (1970: already passed)", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 5, "Deadline": 1})
              + mp_pack({})))
    c.append(("Traceparent as an int, Tracestate as a map", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 5,
              "Traceparent": 7, "Tracestate": {"a": 1}}) + mp_pack({})))
    c.append(("Traceparent 100 KB of junk", mp_pack({"ServiceMethod": "Status.Ping", "Seq": 5,
                                                     "Traceparent": "x" * 100000}) + mp_pack({})))
    c.append(("ServiceMethod twice (Test.Fail then Status.Ping)",
              mp_pack(Pairs([("ServiceMethod", "Test.Fail"), ("Seq", 5), ("ServiceMethod", "Status.Ping")]))
              + mp_pack({})))
    c.append(("str32 length 0xFFFFFFFF as ServiceMethod", b"\x82\xadServiceMethod\xdb\xff\xff\xff\xff" + b"A" * 64))
    c.append(("bin32 length 0x7FFFFFFF as Echo's Msg", mp_pack({"ServiceMethod": "Echo.Echo", "Seq": 5})
              + b"\x81\xa3Msg\xc6\x7f\xff\xff\xff" + b"B" * 64))
    c.append(("str32 15 MiB claimed, 100 B sent (within limits)", b"\x82\xadServiceMethod\xdb\x00\xf0\x00\x00"
              + b"A" * 100))
    c.append(("map32 count 0xFFFFFFFF as header", b"\xdf\xff\xff\xff\xff" + b"\xa1a\x01" * 4))
    c.append(("array32 count 2^31 as args", mp_pack(ping) + b"\xdd\x80\x00\x00\x00" + b"\x01" * 16))
    c.append(("args nested 100 deep", mp_pack(ping) + b"\x91" * 100 + b"\x01"))
    c.append(("header nested 100 deep", b"\x91" * 100 + b"\x01"))
    c.append(("0xc1 as the header", b"\xc1" + mp_pack({})))
    c.append(("Echo with Msg an int", rpc_request("Echo.Echo", 5, {"Msg": 123})))
    c.append(("Arith.Add with args a str", rpc_request("Arith.Add", 5, "A+B")))
    c.append(("Arith.Add int64 max + 1", rpc_request("Arith.Add", 5, {"A": (1 << 63) - 1, "B": 1})))
    c.append(("Arith.Add A = 2^64-1 (uint64)", rpc_request("Arith.Add", 5, {"A": (1 << 64) - 1, "B": 1})))
    c.append(("unknown service", rpc_request("Nope.Nope", 5, ok_args)))
    c.append(("no dot in ServiceMethod", rpc_request("StatusPing", 5, ok_args)))
    c.append(("Test.Fail with a 100 KB message", rpc_request("Test.Fail", 5, {"Message": "m" * 100000})))
    c.append(("Test.Sleep Ms -5", rpc_request("Test.Sleep", 5, {"Ms": -5})))
    c.append(("Test.Sleep Ms 10^12 (then we close)", rpc_request("Test.Sleep", 5, {"Ms": 10 ** 12})))
    c.append(("map16 header claiming 1,000 entries, 2 sent", b"\xde\x03\xe8" + mp_pack("Seq") + mp_pack(5)))
    return c


def cls_malformed_rpc(ctx):
    cases = _malformed_cases()
    res = Result(f"{len(cases)} malformed net/rpc messages (header not a map, ServiceMethod as bin/int/ext, odd "
                 "key types, odd Seq, lying str32/bin32/map32/array32 lengths, deep nesting, 0xc1, bad args), "
                 "each on its own Consul stream, Nomad stream and plain connection; then a valid Status.Ping "
                 "on the same stream")
    wait = ctx.n(0.8, 0.5)
    modes = (("consul", b"\x04", True, False), ("nomad", b"\x06", True, True), ("plain", b"\x00", False, False))
    table = collections.defaultdict(dict)
    follow = collections.defaultdict(dict)
    for mode, preamble, yamux, nomad in modes:
        conns = []
        for name, payload in cases:
            try:
                conn = RawConn(ctx.port, preamble, yamux=yamux)
            except OSError as error:
                res.surprises.append(f"malformed {mode} {name}: connect failed {errno_name(error)}")
                continue
            conn.case = name
            if yamux:
                conn.sid = conn.open_stream(payload[:60000], nomad=nomad)
                for i in range(60000, len(payload), 60000):
                    conn.send_data(conn.sid, payload[i:i + 60000])
            else:
                conn.send(payload)
            conns.append(conn)
        pump_many(conns, wait)
        for conn in conns:
            table[conn.case][mode] = _rpc_outcome(conn)
        # Follow-up: a valid call on the same stream / connection.
        for conn in conns:
            conn.before = len(conn.responses(conn.sid) if yamux else conn.responses())
            if conn.closed is None and not (yamux and (conn.sid in conn.fin or conn.sid in conn.rst)):
                request = rpc_request("Status.Ping", 99, {})
                if yamux:
                    conn.send_data(conn.sid, request)
                else:
                    conn.send(request)
        pump_many(conns, wait)
        for conn in conns:
            got = conn.responses(conn.sid) if yamux else conn.responses()
            later = [h for h, _ in got[conn.before:] if isinstance(h, dict) and h.get("Seq") == 99]
            follow[conn.case][mode] = "then served" if later else "then no answer"
        close_all(conns)
    lines = []
    kinds = collections.Counter()
    for name, _ in cases:
        row = table[name]
        fol = follow[name]
        text = "; ".join(f"{m}: {row.get(m, '?')} ({fol.get(m, '?')})" for m, _, _, _ in modes)
        lines.append(f"{name}: {text}")
        for m in row:
            kinds[row[m].split(":")[0]] += 1
        # Sessions must survive every malformed stream.
        for m in ("consul", "nomad"):
            if "session closed" in row.get(m, ""):
                res.surprises.append(f"malformed {name} ({m}): ended the whole session, not only the stream")
        if len({row.get(m, "").split(" [")[0] for m in row}) > 1 and "Sleep" not in name:
            pass
    res.outcome = f"{len(cases) * 3} cases: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common())
    res.notes.extend(lines)
    return res


def _rpc_outcome(conn):
    if conn.yamux:
        sid = conn.sid
        got = conn.responses(sid)
        if conn.goaways:
            return f"session closed: GoAway({conn.goaways[0]})"
        if conn.closed is not None and not got:
            return f"session closed: {conn.closed}"
        parts = []
        if got:
            header = got[0][0]
            error = header.get("Error") if isinstance(header, dict) else header
            parts.append(f"answered: error {_short(error)}" if error else
                         f"answered: ok Seq={header.get('Seq') if isinstance(header, dict) else '?'}")
        if sid in conn.rst:
            parts.append("RST")
        elif sid in conn.fin:
            parts.append("stream closed (FIN)")
        if not parts:
            parts.append("nothing (stream open)")
        return ", ".join(parts)
    got = conn.responses()
    parts = []
    if got:
        header = got[0][0]
        error = header.get("Error") if isinstance(header, dict) else header
        parts.append(f"answered: error {_short(error)}" if error else
                     f"answered: ok Seq={header.get('Seq') if isinstance(header, dict) else '?'}")
    if conn.closed == "EOF":
        parts.append("connection closed")
    elif conn.closed:
        parts.append(f"connection closed ({conn.closed})")
    if not parts:
        parts.append("nothing (connection open)")
    return ", ".join(parts)


def _short(text, n=70):
    text = repr(text) if not isinstance(text, str) else text
    return ('"' + text[:n] + ('..."' if len(text) > n else '"'))


# --- 10. connection floods ---------------------------------------------------------

def cls_connection_flood(ctx):
    n = ctx.n(3000, 300)
    churn = ctx.n(3000, 300)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = min(n, max(100, soft - 500))
    res = Result(f"{n:,} connections opened and held (a third send nothing, a third 0x04 and idle, a third 0x00 "
                 f"and idle), then {churn:,} connect-and-close at once")
    held = []
    failures = collections.Counter()
    started = time.monotonic()
    end = started + ctx.dur * 0.5
    for i in range(n):
        if time.monotonic() > end + ctx.dur:
            break
        preamble = (b"", b"\x04", b"\x00")[i % 3]
        try:
            conn = RawConn(ctx.port, preamble, yamux=(i % 3 == 1), connect_timeout=2.0, nodelay=False)
            conn.kind = ("nothing", "0x04 idle", "0x00 idle")[i % 3]
            held.append(conn)
        except OSError as error:
            failures[errno_name(error)] += 1
    opened_in = time.monotonic() - started
    hold_until = started + max(ctx.dur, 1.0)
    while time.monotonic() < hold_until:
        pump_many(held, min(0.5, max(0.0, hold_until - time.monotonic())))
    by_kind = collections.defaultdict(lambda: [0, 0])
    for conn in held:
        by_kind[conn.kind][0] += 1
        if conn.closed is not None:
            by_kind[conn.kind][1] += 1
    fds_held = ctx.server.fds()
    text = f"{len(held):,} opened in {opened_in:.1f} s" + (f", {dict(failures)} failed" if failures else "")
    text += "; closed by the server while held " + ", ".join(
        f"{k}: {v[1]}/{v[0]}" for k, v in sorted(by_kind.items()))
    text += f"; server fds while held: {fds_held}"
    close_all(held)
    # connect-and-close churn
    churn_fail = collections.Counter()
    t0 = time.monotonic()
    done = 0
    for i in range(churn):
        if time.monotonic() - t0 > ctx.dur * 2:
            break
        try:
            sock = socket.create_connection((HOST, ctx.port), timeout=2.0)
            if i % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            done += 1
        except OSError as error:
            churn_fail[errno_name(error)] += 1
    text += f"; churn: {done:,} connect+close in {time.monotonic() - t0:.1f} s" + (
        f", failures {dict(churn_fail)}" if churn_fail else "")
    if failures or churn_fail:
        res.surprises.append(f"connection flood: connects failed: {dict(failures)} {dict(churn_fail)}")
    res.outcome = text
    return res


def cls_session_buffer_cap(ctx):
    """Opt-in: Consul sessions that never read, each with many streams sent 3 x 64 KiB Echo
    requests (within their initial 256 KiB windows). How much does each session cost, does the
    session buffer cap (128 MiB, GoAway(2)) end it, and does the write timeout (10 s) end it?"""
    plan = [int(x) for x in ctx.args.buffer_cap_sessions.split(",") if x.strip()]
    request = echo_request(1, 65536)
    res = Result(f"{len(plan)} Consul sessions that never read the socket, with {', '.join(f'{n:,}' for n in plan)} "
                 "streams; each stream: SYN (ACK awaited, no backlog refusals), then 3 x 64 KiB Echo requests within "
                 "its initial window; held until 12 s after the last write, then read back")
    conns = []
    steps = []
    for n in plan:
        before = ctx.sampler.latest()
        conn = RawConn(ctx.port, b"\x04", yamux=True, auto_credit=False)
        conn.keep_data = False
        sids = [1 + 2 * i for i in range(n)]
        for i in range(0, n, 200):
            part = sids[i:i + 200]
            conn.send(b"".join(frame(WU, SYN, sid, 0) for sid in part))
            conn.pump(3.0, until=lambda: all(x in conn.acked or x in conn.rst for x in part))
        sent, blocked = 0, None
        for sid in sids:
            if sid not in conn.acked:
                continue
            if ctx.rss_over_guard():
                blocked = "RSS guard"
                break
            error = _send_noread(conn, data_frame(sid, request) * 3, 1.0)
            if error:
                blocked = error
                break
            sent += 3
        conn.last_write = time.time()
        time.sleep(1.0)
        after = ctx.sampler.latest()
        steps.append(f"session of {n:,} streams ({len(conn.acked):,} ACKed): {sent:,} requests "
                     f"({sent * 65.6 / 1024:.0f} MB){', ' + blocked if blocked else ''}; server RSS "
                     f"{_mb(before)} -> {_mb(after)} MB")
        conn.growth_mb = ((after or 0) - (before or 0)) / 1024
        conns.append(conn)
        if blocked == "RSS guard":
            res.surprises.append("session buffer cap: stopped by the RSS guard")
            break
    held = ctx.sampler.latest()
    end = conns[-1].last_write + 12.0 if conns else time.time()
    while time.time() < end:
        time.sleep(0.2)
    for conn in conns:
        conn.pump(3.0, until=lambda: conn.closed is not None)
    ends = []
    for conn, n in zip(conns, plan):
        when = f" {conn.closed_at - conn.last_write:.1f} s after its last write (when we read it)" if conn.closed_at else ""
        ends.append(f"{n:,} streams: GoAway {conn.goaways or 'none'}, {conn.closed or 'open'}{when}")
        if not conn.goaways and conn.growth_mb > 160:
            res.surprises.append(f"session buffer cap: a session of {n:,} never-read streams grew the server's RSS by "
                                 f"{conn.growth_mb:.0f} MB, past the 128 MiB cap, without GoAway(2): the cap counts bytes "
                                 "only while they sit in a stream; requests the RPC handler has taken (and the read "
                                 "buffers their slices keep) and replies handed to the unwritable connection are not "
                                 "counted")
    close_all(conns)
    time.sleep(1.0)
    res.outcome = (" / ".join(steps) + f"; all held: RSS {_mb(held)} MB; then: " + " / ".join(ends)
                   + f"; 1 s after we closed: RSS {_mb(ctx.sampler.latest())} MB")
    res.notes.append("the cap is per session: sessions under it add up; the connection write timeout (10 s "
                     "unwritable) is what ends a session that never reads")
    res.notes.append("memory the allocator keeps after a burst (MallocTuning: up to 64 MiB per arena) stays in RSS; "
                     "--server-arg=--default-malloc shows what is really held")
    return res


def cls_connection_exhaustion(ctx):
    """Opt-in: fills the server's connection limit with plain-mode slowloris connections."""
    limit = ctx.args.exhaust_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = min(limit, soft - 300)
    res = Result(f"{limit:,} plain connections, each 0x00 + the first 20 bytes of a request (past the preamble, so "
                 "no handshake timeout), held; then fresh connections in each mode")
    held = []
    failures = collections.Counter()
    started = time.monotonic()
    partial = b"\x00" + rpc_request("Status.Ping", 1, {})[:20]
    while len(held) + sum(failures.values()) < limit and time.monotonic() - started < max(ctx.dur, 5.0) * 6:
        try:
            conn = RawConn(ctx.port, partial, connect_timeout=2.0, nodelay=False)
            conn.keep_data = False
            held.append(conn)
        except OSError as error:
            failures[errno_name(error)] += 1
    opened_in = time.monotonic() - started
    pump_many(held, 1.0)
    closed_now = sum(1 for c in held if c.closed is not None)
    fds = ctx.server.fds()
    results = [probe(ctx.port, mode, timeout=3.0) for mode in ("consul", "nomad", "plain")]
    hold_end = time.monotonic() + ctx.dur
    while time.monotonic() < hold_end:
        pump_many(held, min(0.5, max(0.0, hold_end - time.monotonic())))
    closed_later = sum(1 for c in held if c.closed is not None)
    close_all(held)
    time.sleep(1.0)
    after = [probe(ctx.port, mode, timeout=3.0) for mode in ("consul", "nomad", "plain")]
    res.outcome = (f"{len(held):,} held in {opened_in:.1f} s" + (f", connects failed {dict(failures)}" if failures else "")
                   + f"; closed by the server: {closed_now:,} at once, {closed_later:,} by the end; server fds {fds}; "
                   "fresh connections while held: " + "; ".join(t for _, t in results)
                   + "; after we closed them: " + "; ".join(t for _, t in after))
    if not all(ok for ok, _ in results):
        res.surprises.append(f"connection exhaustion: {len(held):,} plain connections stalled past the preamble lock "
                             "new clients out (" + "; ".join(t for ok, t in results if not ok) + ")")
    return res


CLASSES = [
    ("random-bytes", cls_random_bytes),
    ("syn-then-close", cls_syn_then_close),
    ("yamux-mutations", cls_yamux_mutations),
    ("syn-flood", cls_syn_flood),
    ("ping-flood", cls_ping_flood),
    ("stream-churn", cls_stream_churn),
    ("slowloris", cls_slowloris),
    ("malformed-rpc", cls_malformed_rpc),
    ("connection-flood", cls_connection_flood),
    ("never-reading", cls_never_reading),
]
# Run only when named in --classes: connection-exhaustion locks healthy clients out by design;
# session-buffer-cap grows the server by ~1 GB for a while, and with MallocTuning the allocator
# keeps much of it, over the default RSS bound, even once the server has freed it.
OPT_IN_CLASSES = [
    ("connection-exhaustion", cls_connection_exhaustion),
    ("session-buffer-cap", cls_session_buffer_cap),
]


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def healthy_errors(binary_loop, python_client, start, end):
    runs = [r for r in binary_loop.runs if r["end"] >= start and r["start"] <= end]
    bin_errors = sum(r["errors"] for r in runs)
    bin_calls = sum(r["calls"] for r in runs)
    py_errors = [e for t, e in python_client.errors if start <= t <= end]
    py_ok = sum(n for t, n in python_client.oks if start <= t <= end)
    details = [f"muxrpc-client {r['mode']} (rc {r['rc']}): {r['line']}" for r in runs if r["errors"]]
    details += [f"python: {e}" for e in py_errors[:5]]
    if len(py_errors) > 5:
        details.append(f"python: ... {len(py_errors) - 5} more")
    text = (f"muxrpc-client: {bin_errors} errors in {len(runs)} runs ({bin_calls:,} calls); "
            f"python: {len(py_errors)} errors, {py_ok:,} ok")
    return bin_errors + len(py_errors), text, details


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="classes: " + ", ".join(name for name, _ in CLASSES)
                                     + "; opt-in (only with --classes): "
                                     + ", ".join(name for name, _ in OPT_IN_CLASSES))
    parser.add_argument("--server", default=os.path.join(ROOT, ".build", "release", "muxrpc-server"),
                        help="muxrpc-server binary (release or debug)")
    parser.add_argument("--client", default=None, help="muxrpc-client binary (default: next to --server)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for the server (repeat)")
    parser.add_argument("--duration-per-class", type=float, default=None, help="seconds per class (default 5; 1.5 with --short)")
    parser.add_argument("--short", action="store_true", help="CI form: about 1-2 s per class, small counts, under ~60 s")
    parser.add_argument("--max-rss-growth-mb", type=float, default=64.0,
                        help="fail when the server's RSS at the end exceeds the start by more (default 64)")
    parser.add_argument("--rss-guard-mb", type=float, default=1024.0,
                        help="stop a growing class once the server's RSS has grown this much (default 1024)")
    parser.add_argument("--max-total-seconds", type=float, default=None,
                        help="hard bound on the whole run (default 900; 120 with --short)")
    parser.add_argument("--classes", default=None, help="comma-separated subset of the classes, in the given order")
    parser.add_argument("--list-classes", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--strict", action="store_true",
                        help="also fail on any DEFECT/SURPRISE a class reports (stream churn failures, leaks per "
                             "connection, behaviour unlike the docs), not only on a dead server, healthy client "
                             "errors and RSS growth")
    parser.add_argument("--exhaust-connections", type=int, default=10100,
                        help="connections the opt-in connection-exhaustion class holds (default 10,100: "
                             "past the server's maxConnections of 10,000)")
    parser.add_argument("--buffer-cap-sessions", default="1000,1000,2000",
                        help="streams in each session of the opt-in session-buffer-cap class (default "
                             "1000,1000,2000: two under the 128 MiB cap, one over)")
    parser.add_argument("--slowloris-hold", type=float, default=None,
                        help="seconds slowloris holds its connections (default 6.5; 2 with --short); 45 shows "
                             "whether the yamux keepalive closes a stalled session")
    parser.add_argument("--settle", type=float, default=None, help="seconds to settle after a class (default 1.5; 0.5 short)")
    parser.add_argument("--healthy-python", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--healthy-seconds", type=int, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.healthy_python is not None:
        return healthy_python_main(args.healthy_python, args.healthy_seconds)
    if args.list_classes:
        print("\n".join(name for name, _ in CLASSES))
        print("\n".join(f"{name} (opt-in)" for name, _ in OPT_IN_CLASSES))
        return 0
    if args.duration_per_class is None:
        args.duration_per_class = 1.5 if args.short else 5.0
    if args.max_total_seconds is None:
        args.max_total_seconds = 120.0 if args.short else 900.0
    if args.settle is None:
        args.settle = 0.5 if args.short else 1.5
    if args.client is None:
        args.client = os.path.join(os.path.dirname(os.path.abspath(args.server)), "muxrpc-client")
    classes = CLASSES
    if args.classes:
        wanted = [w.strip() for w in args.classes.split(",") if w.strip()]
        known = dict(CLASSES + OPT_IN_CLASSES)
        unknown = [w for w in wanted if w not in known]
        if unknown:
            print(f"unknown classes: {unknown}; known: {list(known)}", file=sys.stderr)
            return 2
        classes = [(w, known[w]) for w in wanted]
    for path in (args.server, args.client):
        if not os.access(path, os.X_OK):
            print(f"not an executable: {path}", file=sys.stderr)
            return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    run_started = time.monotonic()
    say(f"seed {seed}; server {args.server}; client {args.client}; "
        f"{'short' if args.short else 'full'} form, {args.duration_per_class:g} s per class")
    server = Server(args.server, args.server_arg)
    try:
        port = server.start()
    except (RuntimeError, OSError) as error:
        print(f"could not start the server: {error}", file=sys.stderr)
        return 2
    say(f"server pid {server.proc.pid} listening on {HOST}:{port}")
    sampler = RSSSampler(server)
    sampler.start()

    rows = []
    failures = []
    state = {"finished": False}
    print_lock = threading.Lock()

    def report(partial):
        with print_lock:
            print_report(rows, failures, args, seed, server, partial)

    def watchdog():
        if state["finished"]:
            return
        failures.append(f"the whole run hit --max-total-seconds {args.max_total_seconds:g}")
        report(partial=True)
        server.kill()
        os._exit(3)

    timer = threading.Timer(args.max_total_seconds, watchdog)
    timer.daemon = True
    timer.start()

    calls = 500 if args.short else 3000
    binary_loop = BinaryClientLoop(args.client, port, calls, max_runs=2000, run_timeout=60.0)
    python_client = PythonClientMonitor(port, args.max_total_seconds + 30)
    binary_loop.start()
    python_client.start()
    time.sleep(1.0 if args.short else 2.0)
    ctx = Ctx(args, port, server, sampler, random.Random(seed))
    rss_start = sampler.latest()
    ctx.rss_start_kb = rss_start
    fds_start = server.fds()
    say(f"start: server RSS {_mb(rss_start)} MB, {fds_start} fds, {server.threads()} threads")
    server_died = False
    for name, function in classes:
        if not server.alive():
            server_died = True
            break
        t0 = time.time()
        before = sampler.latest()
        fds_before = server.fds()
        say(f"class {name}")
        try:
            result = function(ctx)
        except Exception as error:  # a class that broke is reported, the run goes on
            import traceback
            result = Result("(the class raised)")
            result.outcome = f"attack script error: {type(error).__name__}: {error}"
            result.surprises.append(f"{name}: the attack script raised {error!r}: "
                                    + traceback.format_exc().strip().splitlines()[-3])
        t_class_end = time.time()
        time.sleep(args.settle)
        alive = server.alive()
        serving, probe_text = probe_all(port) if alive else (False, "process exited")
        after = sampler.latest()
        t1 = time.time()
        peak = sampler.peak(t0, t1)
        fds_after = server.fds()
        n_err, err_text, err_details = healthy_errors(binary_loop, python_client, t0, t1)
        row = {
            "name": name, "sent": result.sent,
            "outcome": ("serving" if serving else ("NOT SERVING" if alive else "SERVER DIED"))
                       + ". " + result.outcome,
            "probe": probe_text, "errors": n_err, "err_text": err_text, "err_details": err_details,
            "rss": (before, peak, after), "fds": (fds_before, fds_after),
            "notes": result.notes, "surprises": result.surprises, "seconds": t_class_end - t0,
        }
        rows.append(row)
        say(f"  {t_class_end - t0:.1f} s; {'serving' if serving else 'NOT serving: ' + probe_text}; "
            f"RSS {_mb(before)}/{_mb(peak)}/{_mb(after)} MB; fds {fds_before}->{fds_after}; {err_text}")
        if not alive:
            server_died = True
            failures.append(f"the server died during {name} (exit {server.proc.returncode})")
            break
        if not serving:
            failures.append(f"the server stopped serving after {name}: {probe_text}")
        if n_err:
            failures.append(f"healthy clients saw {n_err} errors during {name}")
    time.sleep(args.settle)
    rss_end = sampler.latest()
    fds_end = server.fds()
    binary_loop.stop(70)
    python_client.stop()
    total_py_errors = len(python_client.errors)
    total_bin_errors = sum(r["errors"] for r in binary_loop.runs)
    total_bin_calls = sum(r["calls"] for r in binary_loop.runs)
    total_py_ok = sum(n for _, n in python_client.oks)
    code, how, stop_seconds = server.stop()
    sampler.stop_event.set()
    state["finished"] = True
    timer.cancel()
    growth_mb = (rss_end - rss_start) / 1024 if rss_end and rss_start else 0.0
    summary = {
        "rss_start": rss_start, "rss_end": rss_end, "growth_mb": growth_mb, "fds_start": fds_start,
        "fds_end": fds_end, "stop": (code, how, stop_seconds),
        "healthy": f"muxrpc-client: {len(binary_loop.runs)} runs, {total_bin_calls:,} calls, {total_bin_errors} errors; "
                   f"python: {total_py_ok:,} ok, {total_py_errors} errors",
        "duration": time.monotonic() - run_started,
    }
    if args.strict:
        flagged = [f"{row['name']}: {len(row['surprises'])}" for row in rows if row["surprises"]]
        if flagged:
            failures.append("--strict: classes reported defects or surprises (" + ", ".join(flagged) + ")")
    if rss_end and rss_start and growth_mb > args.max_rss_growth_mb:
        failures.append(f"server RSS grew {growth_mb:.1f} MB over the run (bound {args.max_rss_growth_mb:g})")
    if total_py_errors and not any("healthy clients" in f for f in failures):
        failures.append(f"the healthy Python client saw {total_py_errors} errors")
    if total_bin_errors and not any("healthy clients" in f for f in failures):
        failures.append(f"muxrpc-client saw {total_bin_errors} errors")
    if python_client.proc.returncode not in (0, None):
        failures.append(f"the healthy Python client exited {python_client.proc.returncode}: "
                        f"{python_client.stderr.strip()[-300:]}")
    if not server_died and how != "SIGINT":
        failures.append(f"the server did not stop on SIGINT: {how}")
    elif not server_died and code not in (0,):
        failures.append(f"the server exited {code} after SIGINT")
    with print_lock:
        print_report(rows, failures, args, seed, server, False, summary)
    return 1 if failures else 0


def print_report(rows, failures, args, seed, server, partial, summary=None):
    out = []
    out.append(f"## muxrpc-server under attack{' (PARTIAL: run stopped)' if partial else ''}")
    out.append("")
    out.append(f"server `{args.server}`{' ' + ' '.join(args.server_arg) if args.server_arg else ''}, "
               f"{'short' if args.short else 'full'} form, {args.duration_per_class:g} s per class, seed {seed}")
    out.append("")
    out.append("| class | what was sent | server outcome | healthy client errors during the class "
               "| RSS before / peak / after (MB) | notes |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        before, peak, after = row["rss"]
        notes = [f"{row['seconds']:.1f} s", f"server fds {row['fds'][0]} -> {row['fds'][1]}"]
        notes += [f"DEFECT/SURPRISE: {s}" for s in row["surprises"][:3]]
        if len(row["surprises"]) > 3:
            notes.append(f"... {len(row['surprises']) - 3} more (see details)")
        out.append(f"| {row['name']} | {cell(row['sent'])} | {cell(row['outcome'])} | "
                   f"{row['errors']} ({cell(row['err_text'])}) | {_mb(before)} / {_mb(peak)} / {_mb(after)} | "
                   f"{cell('; '.join(notes))} |")
    out.append("")
    if summary:
        code, how, seconds = summary["stop"]
        out.append(f"- run: {summary['duration']:.1f} s; server RSS start {_mb(summary['rss_start'])} MB, end "
                   f"{_mb(summary['rss_end'])} MB (growth {summary['growth_mb']:+.1f} MB, bound "
                   f"{args.max_rss_growth_mb:g}); fds {summary['fds_start']} -> {summary['fds_end']}")
        out.append(f"- healthy clients over the whole run: {summary['healthy']}")
        out.append(f"- server stop: {how}, exit {code}, {seconds:.1f} s")
    out.append("")
    out.append("### Details")
    for row in rows:
        out.append("")
        out.append(f"#### {row['name']}")
        out.append(f"- probes after: {row['probe']}")
        for line in row["notes"]:
            out.append(f"- {line}")
        for line in row["surprises"]:
            out.append(f"- DEFECT/SURPRISE: {line}")
        for line in row["err_details"]:
            out.append(f"- healthy client error: {line}")
    if server.stderr_tail:
        out.append("")
        out.append("### Server stderr (last lines)")
        out.append("```")
        out.extend(list(server.stderr_tail)[-20:])
        out.append("```")
    out.append("")
    out.append("RESULT: " + ("FAIL: " + "; ".join(failures) if failures else "PASS"))
    print("\n".join(out), flush=True)


def say(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
