"""An independent, pure-Python implementation of docs/hashing.md (key hash version 1).

Written from the document, not from the C++ code, so that agreement between the two is evidence
that both follow the document. Used by hash_reference_check.py; importable by anyone who needs
Sabot's HASH partition of a key in Python (pyarrow only, no other dependency).
"""

import decimal
import math
import struct

import pyarrow as pa

MASK = (1 << 64) - 1
ROW_SEED = 0x5341424F542D3031
NULL_HASH = 0x4E554C4C4E554C4C
GOLDEN = 0x9E3779B97F4A7C15

P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5


def fmix64(k):
    k &= MASK
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & MASK
    k ^= k >> 33
    return k


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def _round(acc, lane):
    acc = (acc + lane * P2) & MASK
    return (_rotl(acc, 31) * P1) & MASK


def _merge(acc, val):
    acc ^= _round(0, val)
    return (acc * P1 + P4) & MASK


def xxh64(data, seed=0):
    """XXH64 as in the xxHash specification."""
    n = len(data)
    p = 0
    if n >= 32:
        v1 = (seed + P1 + P2) & MASK
        v2 = (seed + P2) & MASK
        v3 = seed & MASK
        v4 = (seed - P1) & MASK
        while p + 32 <= n:
            v1 = _round(v1, int.from_bytes(data[p:p + 8], "little"))
            v2 = _round(v2, int.from_bytes(data[p + 8:p + 16], "little"))
            v3 = _round(v3, int.from_bytes(data[p + 16:p + 24], "little"))
            v4 = _round(v4, int.from_bytes(data[p + 24:p + 32], "little"))
            p += 32
        h = (_rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)) & MASK
        for v in (v1, v2, v3, v4):
            h = _merge(h, v)
    else:
        h = (seed + P5) & MASK
    h = (h + n) & MASK
    while p + 8 <= n:
        h ^= _round(0, int.from_bytes(data[p:p + 8], "little"))
        h = (_rotl(h, 27) * P1 + P4) & MASK
        p += 8
    if p + 4 <= n:
        h ^= (int.from_bytes(data[p:p + 4], "little") * P1) & MASK
        h = (_rotl(h, 23) * P2 + P3) & MASK
        p += 4
    while p < n:
        h ^= (data[p] * P5) & MASK
        h = (_rotl(h, 11) * P1) & MASK
        p += 1
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    h ^= h >> 32
    return h


def hash_fixed(canonical):
    # The column hash of a fixed-width value is its canonical 64-bit form, unmixed.
    return canonical & MASK


def canonical_double(x):
    if math.isnan(x):
        return 0x7FF8000000000000
    if x == 0.0:
        return 0
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _decimal_bytes(value, scale):
    unscaled = int(value.scaleb(scale, context=decimal.Context(prec=100)))
    return unscaled.to_bytes(16, "little", signed=True)


def column_hashes(array):
    """The column hash of every value of a pyarrow Array, nulls included."""
    t = array.type
    if pa.types.is_dictionary(t):
        value_hashes = column_hashes(array.dictionary)
        return [NULL_HASH if i is None else value_hashes[i] for i in array.indices.to_pylist()]
    if pa.types.is_integer(t):
        values = [None if v is None else hash_fixed(v) for v in array.to_pylist()]
    elif pa.types.is_floating(t):
        values = [None if v is None else hash_fixed(canonical_double(v))
                  for v in array.to_pylist()]
    elif pa.types.is_boolean(t):
        values = [None if v is None else hash_fixed(1 if v else 0) for v in array.to_pylist()]
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        values = [None if v is None else xxh64(v.encode("utf-8")) for v in array.to_pylist()]
    elif (pa.types.is_binary(t) or pa.types.is_large_binary(t)
          or pa.types.is_fixed_size_binary(t)):
        values = [None if v is None else xxh64(v) for v in array.to_pylist()]
    elif pa.types.is_decimal128(t):
        values = [None if v is None else xxh64(_decimal_bytes(v, t.scale))
                  for v in array.to_pylist()]
    elif pa.types.is_date32(t) or pa.types.is_time32(t):
        values = [None if v is None else hash_fixed(v)
                  for v in array.view(pa.int32()).to_pylist()]
    elif pa.types.is_date64(t) or pa.types.is_time64(t) or pa.types.is_timestamp(t):
        values = [None if v is None else hash_fixed(v)
                  for v in array.view(pa.int64()).to_pylist()]
    else:
        raise TypeError(f"type {t} is not a HASH key type")
    return [NULL_HASH if v is None else v for v in values]


def combine(row_hash, column_hash):
    return fmix64((row_hash * GOLDEN + column_hash) & MASK)


def row_hashes(key_arrays):
    """Row hashes of the key columns (pyarrow Arrays of equal length), in key order."""
    length = len(key_arrays[0])
    hashes = [ROW_SEED] * length
    for array in key_arrays:
        for i, c in enumerate(column_hashes(array)):
            hashes[i] = combine(hashes[i], c)
    return hashes


def partition_of(row_hash, num_partitions):
    return (row_hash * num_partitions) >> 64
