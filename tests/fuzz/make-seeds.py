#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz targets (corpus/TARGET/NAME), each a
small input meaning something in that target's format (see the comment
at the top of each fuzz-*.c). Run from anywhere: the corpora are checked
in; run it again after changing a target's input format."""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def le64(v):
    return struct.pack('<q', v)


def le32(v):
    return struct.pack('<I', v & 0xffffffff)


seeds = {}

# ---- fuzz-cli: parser, min index, max index, string --------------------
# Bounds table: 0 1 2 64 4096 65535 65536 2^32-1 2^32 2^60 2^64-2 2^64-1
U64, UINT, SIZE, SECS = 0, 1, 2, 3
seeds['fuzz-cli'] = {
    'number': bytes([U64, 0, 11]) + b'4096',
    'number-hex': bytes([U64, 0, 11]) + b'0x1000',
    'number-octal-looking': bytes([U64, 0, 11]) + b'010',
    'number-too-big': bytes([U64, 0, 11]) + b'18446744073709551616',
    'number-vtab': bytes([U64, 0, 11]) + b'\v1',
    'number-space': bytes([U64, 0, 11]) + b' 1',
    'uint-bounded': bytes([UINT, 1, 3]) + b'65',
    'size-m': bytes([SIZE, 0, 11]) + b'4M',
    'size-kib': bytes([SIZE, 0, 11]) + b'4KiB',
    'size-hex-e': bytes([SIZE, 0, 11]) + b'0x1E',
    'size-hex-eib': bytes([SIZE, 0, 11]) + b'0x1EiB',
    'size-too-big': bytes([SIZE, 0, 11]) + b'16E',
    'size-bounded': bytes([SIZE, 4, 9]) + b'4K',
    'seconds': bytes([SECS, 0, 0]) + b'0.5s',
    'seconds-ms': bytes([SECS, 0, 0]) + b'500ms',
    'seconds-huge': bytes([SECS, 0, 0]) + b'1e999',
}

# ---- fuzz-device-core: mode byte, then ops of 8 bytes -------------------
# op: kind (0 read, 1 write, 2 deliver low vector, 3 deliver any, 4 set_id,
# 5 set_connected, 6 reset, 7 set_state, 8 get/set round trip), width/flag
# byte (p1 % 10 == 0: 32 bits; p1 & 0x80: far offset), offset byte,
# extra byte, value (le32).
def dop(kind, p1=0, p2=0, p3=0, v=0):
    return bytes([kind, p1, p2, p3]) + le32(v)


# mode byte: bits 0-1 the mode, ACK: set_irq reads INTRSTATUS, TRACE: a trace hook
LATCHED, PER_VECTOR, ACK, TRACE = 1, 2, 0x10, 0x20
connect = dop(4, 0, 0, 0, 7) + dop(5, 1)
seeds['fuzz-device-core'] = {
    'default-pulse': bytes([0]) + dop(2, 3) + dop(2, 40) + dop(0, 0, 8),
    'default-doorbell': bytes([0]) + connect + dop(1, 0, 0x0c, 0, (1 << 16) | 2) +
    dop(1, 0, 0x0c, 1, (9 << 16) | 0),
    'latched': bytes([LATCHED]) + dop(1, 0, 0, 0, 0xffffffff) + dop(2, 3) +
    dop(2, 35) + dop(0, 0, 4) + dop(0, 0, 4),
    'latched-ack-in-irq': bytes([LATCHED | ACK]) + dop(1, 0, 0, 0, 0x0f) +
    dop(2, 1) + dop(2, 2) + dop(1, 0, 4, 0, 0xff),
    'per-vector': bytes([PER_VECTOR]) + dop(1, 0, 0, 0, 0x0000ff00) +
    dop(2, 9) + dop(2, 10) + dop(1, 0, 4, 0, 0x100) + dop(6),
    'bad-access': bytes([LATCHED]) + dop(0, 4, 8) + dop(1, 5, 2, 0, 1) +
    dop(0, 0x80, 0xff, 0) + dop(1, 0x40, 0) + dop(0, 6, 0),
    'state': bytes([LATCHED]) + dop(7, 0x60, 0, 0, 0x33) + dop(8) +
    dop(7, 1, 2) + dop(7, 4 | (2 << 3)) + dop(1, 0, 0, 0, 1) + dop(8),
    'ids': bytes([0]) + dop(4, 1, 0, 0, 0x10000) + dop(4, 2) + dop(4, 0, 0, 0, 65535) +
    dop(0, 0, 8),
}
# The same with a trace hook, whose records the target checks.
seeds['fuzz-device-core'].update({
    name + '-traced': bytes([data[0] | TRACE]) + data[1:]
    for name, data in list(seeds['fuzz-device-core'].items())})

# ---- fuzz-peer-stream: config, then records (fd kind, size/split, msg) ----
NONE, MEMFD, EVENTFD, PIPE, SEVERAL, SEALED, SOCKET = range(7)
# size selector: 0 1 4096 4097 65536 1M 12288; high nibble 1..7: split,
# 15: the stream stays quiet after the message (PAUSE)
PAUSE = 15
QUIET_END = 16  # config: the stream stays quiet before it ends
def rec(kind, msg, sel=2, split=0):
    return bytes([kind, (split << 4) | sel]) + le64(msg)


def greeting(own=3, others=(1,), vectors=1, shm=MEMFD, sel=2):
    out = rec(NONE, 0) + rec(NONE, own) + rec(shm, -1, sel)
    for o in others:
        out += rec(EVENTFD, o) * vectors
    out += rec(EVENTFD, own) * vectors
    return out


seeds['fuzz-peer-stream'] = {
    'greeting': bytes([1]) + greeting(),
    'greeting-two-vectors': bytes([2]) + greeting(vectors=2),
    'join-leave': bytes([1]) + greeting() + rec(EVENTFD, 5) + rec(NONE, 1) +
    rec(NONE, 5),
    'wrong-version': bytes([1]) + rec(NONE, 1) + rec(NONE, 0),
    'shm-pipe': bytes([1]) + rec(NONE, 0) + rec(NONE, 2) + rec(PIPE, -1),
    'shm-sealed': bytes([1]) + greeting(shm=SEALED),
    'shm-size-zero': bytes([1]) + greeting(sel=0),
    'shm-size-wanted': bytes([1 | 4]) + greeting(sel=3),
    'several-fds': bytes([1]) + rec(NONE, 0) + rec(NONE, 2) + rec(SEVERAL, -1),
    'split': bytes([1]) + rec(NONE, 0, split=3) + rec(NONE, 4, split=7) +
    rec(MEMFD, -1, split=1),
    'id-out-of-range': bytes([1]) + rec(NONE, 0) + rec(NONE, 70000),
    'vector-socket': bytes([1]) + rec(NONE, 0) + rec(NONE, 3) +
    rec(MEMFD, -1) + rec(SOCKET, 1),
    'no-map': bytes([1 | 8]) + greeting(),
    'truncated': bytes([0]) + rec(NONE, 0) + b'\x00\x00\x03\x00\x00',
    # No count known (none configured, no other peer): the quiet period
    # ends the own block; then another peer's block of fewer vectors.
    'quiet-own-vectors': bytes([0]) + greeting(others=(), vectors=2)[:-10] +
    rec(EVENTFD, 3, split=PAUSE) + rec(EVENTFD, 6, split=PAUSE) +
    rec(NONE, 6),
    'quiet-at-end': bytes([QUIET_END]) + greeting(vectors=2)[:-10],
}

# ---- fuzz-server-input: config, then ops (op, client, a, b) -------------
CONNECT, SEND, SEND2, CLOSE, SHUT, DRAIN, RING, KICK = range(8)
def sop(op, c=0, a=0, b=0):
    return bytes([op, c, a, b])


cfg = 1 | (4 << 2)  # 2 vectors, 4 peers, default queue limit
seeds['fuzz-server-input'] = {
    'connect-drain': bytes([cfg]) + sop(CONNECT, 0) + sop(CONNECT, 1) +
    sop(DRAIN, 0) + sop(DRAIN, 1) + sop(CLOSE, 0) + sop(DRAIN, 1),
    'ring-kick': bytes([cfg]) + sop(CONNECT, 0) + sop(CONNECT, 1) +
    sop(RING, 0, 1, 1) + sop(RING, 0, 0, 5) + sop(KICK, 0, 1) + sop(DRAIN, 0),
    'bytes': bytes([cfg]) + sop(CONNECT, 0) + sop(SEND, 0, 8, 0) + le64(1) +
    sop(DRAIN, 0),
    'bytes-with-fd': bytes([cfg]) + sop(CONNECT, 0) + sop(SEND, 0, 3, EVENTFD) +
    b'abc' + sop(CONNECT, 1),
    'fd-only': bytes([cfg]) + sop(CONNECT, 0) + sop(SEND, 0, 0, SEVERAL) +
    sop(CONNECT, 1) + sop(DRAIN, 1),
    'half-close': bytes([cfg]) + sop(CONNECT, 0) + sop(SHUT, 0) + sop(DRAIN, 0),
    'full': bytes([1 << 2]) + sop(CONNECT, 0) + sop(CONNECT, 1) +
    sop(CONNECT, 2) + sop(DRAIN, 1) + sop(CLOSE, 0) + sop(CONNECT, 3),
    'queue-limit': bytes([(1 << 5) | (7 << 2)]) + sop(CONNECT, 0) +
    sop(CONNECT, 1) + sop(CONNECT, 2) + sop(CONNECT, 3) + sop(CLOSE, 1) +
    sop(CLOSE, 2),
}

# ---- fuzz-control: flags (1: two peers, 2: read at the end), lines --------
def lines(*ls):
    return b''.join(l.encode() + b'\n' if isinstance(l, str) else l + b'\n'
                    for l in ls)


seeds['fuzz-control'] = {
    'info': bytes([1]) + lines('{"command":"info","tag":"a"}'),
    'peers-shm': bytes([1]) + lines('{"command":"peers"}', '{"command":"shm"}',
                                    '{"command":"shm"}'),
    'ring': bytes([1]) + lines('{"command":"ring","peer":0,"vector":1}',
                               '{"command":"ring","peer":1}',
                               '{"command":"ring","peer":70000}',
                               '{"command":"ring","peer":0,"vector":[0,1]}'),
    'kick-watch': bytes([1]) + lines('{"command":"watch","tag":[1,{"x":null}]}',
                                     '{"command":"kick","peer":1}',
                                     '{"command":"peers"}'),
    'tags': bytes([0]) + lines('{"command":"info","tag":1e21}',
                               '{"command":"info","tag":1e400}',
                               '{"command":"info","tag":9223372036854775808}',
                               '{"command":"info","tag":"\\ud83dx"}',
                               '{"command":"info","tag":"a\\u0000b"}',
                               '{"command":"info","\\u0074ag":1}'),
    'escapes': bytes([0]) + lines('{"command":"info","tag":"\\ud83d\\ude00"}',
                                  '{"command":"info","tag":"\\ud83d"}',
                                  '{"command":"info","x":"\\udc00\\ud800"}',
                                  '{"command":"in\\u0066o"}',
                                  '{"command":"info\\u0000"}'),
    'malformed': bytes([0]) + lines('{"command":', "{'command':'info'}",
                                    '{"command":"info"} {"command":"info"}',
                                    '[1,2]', '{"command":5}',
                                    '{"command":"nope"}', '   ', b'\xff\xfe',
                                    b'{"command":"info\x00"}'),
    'unterminated': bytes([2]) + b'{"command":"peers"}\n{"command":"info"}',
}

# ---- fuzz-channel: ring sizes and flags, then ops of 8 bytes -------------
def cop(kind, p1=0, p2=0, p3=0, v=0):
    return bytes([kind, p1, p2, p3]) + le32(v)


R64, R128, R256, R4K = range(4)
other_sends = cop(2, 1, 0, 16) + cop(0, 0, 3)  # a 16-byte record, head +24
seeds['fuzz-channel'] = {
    'send-consume': bytes([R256 | (R256 << 2)]) + cop(8, 16) + cop(8, 40) +
    cop(1, 0, 0) + cop(9, 63, 1) + cop(17, 0, 8),
    'receive': bytes([R128 | (R128 << 2)]) + other_sends + cop(15, 4) +
    cop(16) + cop(17, 1),
    'peek-release': bytes([R64 | (R64 << 2)]) + other_sends + cop(12) +
    cop(14) + cop(12) + cop(14, 1),
    'reserve-commit': bytes([R4K | (R64 << 2)]) + cop(10, 8, 3) + cop(10, 16, 1) +
    cop(11) + cop(10, 200, 7),
    'hostile-head': bytes([R128]) + cop(0, 1, 0, 0, 0x7ffffff8) + cop(12),
    'hostile-length': bytes([R128]) + cop(2, 1 | 4, 0, 0, 0xfff0) + cop(0, 0, 1) +
    cop(15, 255),
    'hostile-pad': bytes([R128]) + cop(2, 1 | 2) + cop(0, 0, 2) + cop(13),
    'hostile-tail': bytes([R64]) + cop(8, 8) + cop(1, 1, 0, 0, 0x12345678) +
    cop(9, 8),
    'wait-words': bytes([R256 | 0x10]) + cop(5, 0, 0, 0, 0) + cop(8, 8) +
    cop(5, 1, 0, 0, 0xffffffff) + other_sends + cop(15, 16) + cop(19, 1),
    'stale-layout': bytes([R64]) + cop(7, 1, 6, 0, 99) + cop(8, 1),
    'hostile-layout': bytes([R64 | 0x20]) + bytes([12, 0xff, 16, 0x40, 20, 3,
                                                   4, 2, 8, 1]) + cop(8, 1),
}


def main():
    root = os.path.join(HERE, 'corpus')
    for target, files in seeds.items():
        d = os.path.join(root, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in files.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)


if __name__ == '__main__':
    main()
