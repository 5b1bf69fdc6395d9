#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into Fuzz/Corpus/<target>/.

Run it from anywhere: python3 Fuzz/Corpus/generate.py. It rewrites every
seed, so the files stay what this script says. Seeds are small valid inputs:
MessagePack values, real yamux frames and real net/rpc requests, each with
the prefix the target reads first where it has one (see
Fuzz/Sources/FuzzSupport/FuzzInput.swift: mode byte, pair count, then
(size, action) pairs, then the payload).
"""

import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


# --- A small MessagePack writer (Go's go-msgpack forms: str for strings) ---

class Bin(bytes):
    """Bytes written as bin, not str."""


class Ext:
    def __init__(self, type_, data):
        self.type, self.data = type_, data


class F32(float):
    """A float written as float32."""


def pack(value):
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 0x80:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack(">b", value)
        if value >= 0:
            for fmt, code in ((">B", 0xCC), (">H", 0xCD), (">I", 0xCE), (">Q", 0xCF)):
                try:
                    return bytes([code]) + struct.pack(fmt, value)
                except struct.error:
                    pass
        for fmt, code in ((">b", 0xD0), (">h", 0xD1), (">i", 0xD2), (">q", 0xD3)):
            try:
                return bytes([code]) + struct.pack(fmt, value)
            except struct.error:
                pass
        raise ValueError(value)
    if isinstance(value, F32):
        return b"\xca" + struct.pack(">f", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, Bin):
        n = len(value)
        head = b"\xc4" + bytes([n]) if n < 256 else b"\xc5" + struct.pack(">H", n)
        return head + bytes(value)
    if isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        n = len(data)
        if n < 32:
            head = bytes([0xA0 | n])
        elif n < 256:
            head = b"\xd9" + bytes([n])
        else:
            head = b"\xda" + struct.pack(">H", n)
        return head + data
    if isinstance(value, Ext):
        n = len(value.data)
        fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if n in fixed:
            head = bytes([fixed[n]])
        else:
            head = b"\xc7" + bytes([n])
        return head + struct.pack(">b", value.type) + value.data
    if isinstance(value, list):
        n = len(value)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return head + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        n = len(value)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(v) for k, v in value.items())
    raise TypeError(value)


# --- Yamux frames ---

DATA, WINDOW_UPDATE, PING, GO_AWAY = 0, 1, 2, 3
SYN, ACK, FIN, RST = 1, 2, 4, 8


def frame(type_, flags, stream, length, payload=b""):
    return struct.pack(">BBHII", 0, type_, flags, stream, length) + payload


def data(stream, payload, flags=0):
    return frame(DATA, flags, stream, len(payload), payload)


# --- The prefix the piecewise targets read ---

def prefix(mode, pairs):
    """mode byte, pair count, then the (size, action) pairs."""
    out = bytes([mode, len(pairs) - 1])
    for size, action in pairs:
        out += bytes([size, action])
    return out


WHOLE = 255  # a piece size that takes all that is left


def write(target, name, content):
    folder = os.path.join(HERE, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(content)


# --- net/rpc messages ---

def request(method, seq, args, **extensions):
    header = {"Seq": seq, "ServiceMethod": method}
    header.update(extensions)
    return pack(header) + pack(args)


HEADER_GO = pack({"Seq": 1, "ServiceMethod": "Echo.Echo"})
HEADER_SM_FIRST = pack({"ServiceMethod": "Echo.Echo", "Seq": 1})
ECHO_ARGS = pack({"Msg": "hi"})
ECHO_ARGS_BIN = pack({"Msg": Bin(b"hi")})

EVERYTHING = pack({
    "a": -5, "b": 300, "c": -70000, "d": 1 << 40, "e": F32(1.5), "f": 2.25, "g": "text",
    "h": Bin(b"\x00\x01"), "i": "bytes", "j": Ext(-1, struct.pack(">I", 1700000000)),
    "k": [1, -1, 1 << 33], "l": {"t": True, "f": False}, "m": [{"ServiceMethod": "A.B", "Seq": 2}],
    "n": [None, {"x": [1.0]}], "o": Ext(-1, struct.pack(">Q", (5 << 34) | 1700000000)),
    "p": "a", "q": [Bin(b"x"), "y"], "r": True, "s": {1: "one"},
})


def main():
    for target in ("FuzzMessagePackDecoder", "FuzzMessagePackScanner", "FuzzYamuxFrameDecoder",
                   "FuzzYamuxSession", "FuzzRPCFramer"):
        shutil.rmtree(os.path.join(HERE, target), ignore_errors=True)

    # FuzzMessagePackDecoder: one MessagePack value, no prefix.
    t = "FuzzMessagePackDecoder"
    write(t, "request-header-go-order", HEADER_GO)
    write(t, "request-header", HEADER_SM_FIRST)
    write(t, "request-header-extensions", pack({
        "Seq": 7, "ServiceMethod": "Arith.Add", "Deadline": 1700000000123456789,
        "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Tracestate": "k=v"}))
    write(t, "echo-args", ECHO_ARGS)
    write(t, "everything", EVERYTHING)
    write(t, "scalars", pack([None, True, False, 0, 127, -1, -32, -33, 255, 65535, 1 << 32, (1 << 64) - 1,
                              -(1 << 63), F32(-0.0), float("inf"), ""]))
    write(t, "nested", pack([[[[{"k": [[]]}]]], {}]))
    write(t, "long-string", pack("x" * 40) + b"")
    write(t, "extensions", pack([Ext(5, b"abc"), Ext(-1, b"\x00" * 12), Ext(1, b"\x01")]))
    write(t, "pairs", pack([["one", 1], ["two", 2, None]]))
    write(t, "dates", pack({"when": [Ext(-1, struct.pack(">I", 1)), Bin(b"\x01" + b"\x00" * 14)]}))

    # FuzzMessagePackScanner: prefix (bit 0: roomy limits), values back to back.
    t = "FuzzMessagePackScanner"
    stream = HEADER_GO + ECHO_ARGS
    write(t, "request-1-byte-pieces", prefix(0, [(0, 0)]) + stream)
    write(t, "request-odd-pieces", prefix(1, [(2, 0), (6, 0), (12, 0)]) + stream)
    write(t, "request-whole", prefix(1, [(WHOLE, 0)]) + stream + HEADER_SM_FIRST + ECHO_ARGS_BIN)
    write(t, "everything-pieces", prefix(1, [(4, 0), (30, 0)]) + EVERYTHING)
    write(t, "small-limits-nested", prefix(0, [(1, 0)]) + pack([[[[[[[[1]]]]]]]]) + pack("y" * 40))
    write(t, "three-values", prefix(1, [(0, 0), (3, 0)]) + pack(1) + pack({"a": [1, 2]}) + pack(Bin(b"zz")))

    # FuzzYamuxFrameDecoder: prefix (bit 0: small maximum data length), frames.
    t = "FuzzYamuxFrameDecoder"
    syn = frame(WINDOW_UPDATE, SYN, 1, 0)
    assert syn == bytes.fromhex("000100010000000100000000")
    frames = syn + data(1, b"hello") + frame(PING, SYN, 0, 7) + frame(WINDOW_UPDATE, 0, 1, 4096) \
        + data(1, b"bye", FIN) + frame(WINDOW_UPDATE, RST, 3, 0) + frame(GO_AWAY, 0, 0, 0)
    write(t, "frames-whole", prefix(0, [(WHOLE, 0)]) + frames)
    write(t, "frames-1-byte-pieces", prefix(0, [(0, 0)]) + frames)
    write(t, "frames-split-headers", prefix(0, [(4, 0), (10, 0)]) + frames)
    write(t, "small-max-data", prefix(1, [(1, 0)]) + data(1, b"x" * 5) + data(1, b"y" * 20))

    # FuzzYamuxSession: prefix (mode bits in FuzzYamuxSession.swift), frames from the peer.
    # Actions: 1 accept, 2 open, 3 write, 5 half-close, 9 ping, 10 GoAway, 11 time passes.
    t = "FuzzYamuxSession"
    server_auto = 0x10 | 0x20  # server, accept four up front, echo
    write(t, "server-syn-data-fin", prefix(server_auto, [(WHOLE, 0)])
          + syn + data(1, b"hello") + data(1, b"bye", FIN))
    write(t, "server-syn", prefix(server_auto, [(WHOLE, 0)]) + syn)
    write(t, "server-accept-write", prefix(0x20, [(11, 0x01), (WHOLE, 0x33)])
          + syn + data(1, b"hello") + frame(WINDOW_UPDATE, 0, 1, 1000))
    write(t, "server-ping-goaway", prefix(server_auto, [(11, 0x09), (WHOLE, 0x0A)])
          + frame(PING, SYN, 0, 42) + frame(GO_AWAY, 0, 0, 0))
    write(t, "server-keepalive-time", prefix(server_auto | 0x02, [(11, 0x5B), (WHOLE, 0)])
          + frame(PING, ACK, 0, 0) + frame(PING, SYN, 0, 1))
    # The first piece is a frame that changes nothing (an answer to no ping),
    # so that the stream is opened before the peer's ACK arrives.
    pong = frame(PING, ACK, 0, 99)
    write(t, "client-open-ack-data", prefix(0x01 | 0x20, [(11, 0x02), (11, 0), (WHOLE, 0x05)])
          + pong + frame(WINDOW_UPDATE, ACK, 1, 0) + data(1, b"reply") + data(1, b"", FIN))
    write(t, "client-goaway", prefix(0x01, [(11, 0x02), (WHOLE, 0)])
          + pong + frame(WINDOW_UPDATE, ACK | RST, 1, 0) + frame(GO_AWAY, 0, 0, 1))
    write(t, "server-pieces", prefix(server_auto, [(2, 0x13), (6, 0x08), (12, 0x07)])
          + syn + data(1, b"0123456789") + frame(WINDOW_UPDATE, SYN, 3, 0) + data(3, b"abc", FIN))

    # FuzzRPCFramer: prefix (bit 0: small limits; actions 1 quiesce, 2 time, 3 close), requests.
    t = "FuzzRPCFramer"
    echo = HEADER_SM_FIRST + ECHO_ARGS
    write(t, "echo-request", prefix(0, [(WHOLE, 0)]) + echo)
    write(t, "echo-request-go-order", prefix(0, [(WHOLE, 0)]) + HEADER_GO + ECHO_ARGS)
    write(t, "echo-1-byte-pieces", prefix(0, [(0, 0)]) + echo)
    write(t, "calls", prefix(1, [(5, 0), (WHOLE, 0)])
          + request("Arith.Add", 2, {"A": 1, "B": -2})
          + request("Demo.Echo", 3, {"Msg": Bin(b"bin")})
          + request("Value.Echo", 4, [1, "two", None])
          + request("Async.Echo", 5, {"Msg": "async"})
          + request("Test.Fail", 6, {"Msg": "no"})
          + request("No.Such", 7, {}))
    write(t, "deadline-trace", prefix(0, [(WHOLE, 0)])
          + request("Echo.Echo", 8, {"Msg": "d"}, Deadline=1,
                    Traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
          + request("Async.Echo", 9, {"Msg": "later"}, Deadline=(1 << 63) - 1))
    write(t, "quiesce-between", prefix(0, [(len(echo) - 1, 0x01), (WHOLE, 0)]) + echo + echo)
    write(t, "bad-header", prefix(0, [(WHOLE, 0)]) + pack([1, 2]) + ECHO_ARGS)


if __name__ == "__main__":
    main()
