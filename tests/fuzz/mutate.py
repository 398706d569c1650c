"""Mutations of real captures that know where pcap and pcapng keep their lengths,
timestamps and link types, so damage lands on the fields readers trust."""

from __future__ import annotations

import random
import struct

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
}
EXTREME_U32 = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x10000, 65535, 262144]
LINK_TYPES = [0, 1, 101, 104, 105, 113, 127, 147, 228, 229, 276, 0xFFFF, 0xFFFFFFFF]


def pcap_records(data: bytes) -> tuple[str, list[int]] | None:
    """The byte order and the offsets of the record headers of a classic pcap."""
    order = PCAP_MAGICS.get(bytes(data[:4]))
    if order is None or len(data) < 24:
        return None
    offsets, at = [], 24
    while at + 16 <= len(data) and len(offsets) < 100_000:
        offsets.append(at)
        (length,) = struct.unpack_from(order + "I", data, at + 8)
        at += 16 + length
    return order, offsets


def pcapng_blocks(data: bytes) -> tuple[str, list[tuple[int, int]]] | None:
    """The byte order and (offset, type) of the blocks of a pcapng (first section's order)."""
    if data[:4] != b"\x0a\x0d\x0d\x0a" or len(data) < 12:
        return None
    order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    blocks, at = [], 0
    while at + 12 <= len(data) and len(blocks) < 100_000:
        kind, length = struct.unpack_from(order + "II", data, at)
        blocks.append((at, kind))
        if length < 12 or length % 4:
            break
        at += length
    return order, blocks


def bit_flips(rng: random.Random, data: bytearray, _other: bytes) -> None:
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def truncation(rng: random.Random, data: bytearray, _other: bytes) -> None:
    del data[rng.randrange(len(data) + 1) :]


def splicing(rng: random.Random, data: bytearray, other: bytes) -> None:
    """The head of one capture and the tail of another, cut anywhere."""
    cut, tail = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
    data[cut:] = other[tail:]


def record_lengths(rng: random.Random, data: bytearray, _other: bytes) -> None:
    found = pcap_records(bytes(data))
    if found is None:
        return block_lengths(rng, data, _other)
    order, offsets = found
    if not offsets:
        return
    at = rng.choice(offsets)
    field = rng.choice((8, 12))
    struct.pack_into(order + "I", data, at + field, rng.choice(EXTREME_U32))


def timestamps(rng: random.Random, data: bytearray, _other: bytes) -> None:
    """Times beyond year 9999, beyond time_t, negative as signed, and odd resolutions."""
    found = pcap_records(bytes(data))
    if found is not None:
        order, offsets = found
        for at in rng.sample(offsets, min(len(offsets), rng.randint(1, 4))):
            struct.pack_into(
                order + "II", data, at, rng.choice(EXTREME_U32), rng.choice(EXTREME_U32)
            )
        return
    blocks = pcapng_blocks(bytes(data))
    if blocks is None:
        return
    order, offsets = blocks
    packets = [at for at, kind in offsets if kind in (3, 6, 2)] or [0]
    for at in rng.sample(packets, min(len(packets), rng.randint(1, 4))):
        if at + 20 <= len(data):
            high = rng.choice([0, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x0003FFFF, 0x00FFFFFF])
            struct.pack_into(order + "II", data, at + 12, high, rng.choice(EXTREME_U32))
    _interface_resolution(rng, data, order, offsets)


def _interface_resolution(rng, data: bytearray, order: str, blocks) -> None:
    """if_tsresol (option 9) and if_tsoffset (14) set to extremes where an IDB has options."""
    for at, kind in blocks:
        if kind != 1 or at + 20 > len(data):
            continue
        (length,) = struct.unpack_from(order + "I", data, at + 4)
        option = bytearray(
            struct.pack(order + "HH", 9, 1)
            + bytes([rng.choice([0, 9, 63, 0x80, 0xFF, 127])])
            + b"\0\0\0"
        )
        if rng.random() < 0.5:
            option += struct.pack(order + "HHq", 14, 8, rng.choice([-(1 << 63), (1 << 63) - 1, -1]))
        end = at + length - 4
        if at + length <= len(data) and length >= 20:  # the trailing length field is there
            data[end:end] = bytes(option)
            struct.pack_into(order + "I", data, at + 4, length + len(option))
            struct.pack_into(order + "I", data, at + length + len(option) - 4, length + len(option))
        return


def block_lengths(rng: random.Random, data: bytearray, _other: bytes) -> None:
    found = pcapng_blocks(bytes(data))
    if found is None:
        return
    order, blocks = found
    at, _kind = rng.choice(blocks)
    value = rng.choice([0, 4, 8, 12, 13, 16, 28, 0x7FFFFFFC, 0xFFFFFFFC, 0xFFFFFFFF, 1 << 20])
    field = rng.choice((4, 4, 20, 24))  # total length, or an EPB's captured/original length
    if at + field + 4 <= len(data):
        struct.pack_into(order + "I", data, at + field, value)


def link_types(rng: random.Random, data: bytearray, _other: bytes) -> None:
    if bytes(data[:4]) in PCAP_MAGICS and len(data) >= 24:
        struct.pack_into(PCAP_MAGICS[bytes(data[:4])] + "I", data, 20, rng.choice(LINK_TYPES))
        return
    found = pcapng_blocks(bytes(data))
    if found is None:
        return
    order, blocks = found
    for at, kind in blocks:
        if kind == 1 and at + 10 <= len(data):
            struct.pack_into(order + "H", data, at + 8, rng.choice(LINK_TYPES) & 0xFFFF)


MUTATIONS = {
    "bit_flips": bit_flips,
    "truncation": truncation,
    "splicing": splicing,
    "record_lengths": record_lengths,
    "timestamps": timestamps,
    "block_lengths": block_lengths,
    "link_types": link_types,
}


def mutate(rng: random.Random, seed: bytes, other: bytes) -> tuple[bytes, list[str]]:
    """One to three mutations of ``seed`` (``other`` feeds splicing); returns their names."""
    data, names = bytearray(seed), []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(MUTATIONS))
        MUTATIONS[name](rng, data, other)
        names.append(name)
    return bytes(data), names
