#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include <arrow/array/data.h>
#include <arrow/record_batch.h>
#include <arrow/type_fwd.h>

namespace sabot {

// How many bytes a range of rows of a batch occupies in a block, computed from the batch's own
// buffers rather than from its average row width, so a partition buffer can cut blocks at the
// row where they reach a byte size.
//
// The bytes of rows [begin, end) of a column are, recursively:
//   - validity: ceil(rows / 8) when the column has a validity bitmap;
//   - fixed width (numbers, booleans, decimals, fixed-size binary, temporal types, dictionary
//     indices): bit width x rows, rounded up to bytes;
//   - binary, string (and the large_ variants): the offset width x rows, plus the difference of
//     the offsets at `end` and `begin`, which is exactly the bytes of those rows' values;
//   - list, map, large_list: the offset width x rows, plus the bytes of the child rows the
//     offsets at `begin` and `end` delimit; fixed_size_list: the child rows [begin x k, end x k);
//   - struct and sparse union: the children's bytes over the same rows (plus a type id byte a row
//     for the union);
//   - types whose children or data buffers cannot be delimited by rows (list views, dense
//     unions, run-end encoded arrays, string and binary views): their whole children or data
//     buffers, so the count stays an upper bound.
// Dictionaries are not part of a range: each block carries every dictionary its rows reference,
// in full (BlockEncoder), so CollectDictionaries lists them for counting once per block.
//
// These are the bytes an Arrow IPC record batch of those rows holds in its body (uncompressed),
// and the bytes an unencoded block of them references (arrow::util::ReferencedBufferSize), up to
// a few bytes a buffer of rounding, which BlockOverheadBytes bounds together with the message's
// metadata. (Encoded straight from a slice, a block may hold more: Arrow's IPC writer sends the
// whole offsets of a zero-length array at offset 0, e.g. the strings child of list rows that
// are all empty; PartitionBuffer copies such rows out.) RangeBytes is non-decreasing in `end`, so RowsWithin finds a cut by binary search:
// O(columns x nesting depth x log rows) per cut, never a pass over the rows.
//
// Stateless functions of the batch; safe to call from any thread on an immutable batch.
class RowBytes {
 public:
  // True when every column of `schema` is fixed-width and not dictionary-encoded: then every
  // row of a batch has the same size, and blocks can be cut by the average row width.
  static bool FixedWidth(const arrow::Schema& schema);
  // True when a column of `schema` is dictionary-encoded, at any depth.
  static bool HasDictionaries(const arrow::Schema& schema);

  // Bytes of rows [begin, end) of `batch` (0 <= begin <= end <= num_rows), dictionaries aside.
  static int64_t RangeBytes(const arrow::RecordBatch& batch, int64_t begin, int64_t end);
  // The same for one column (array data, its own offset applied).
  static int64_t RangeBytes(const arrow::ArrayData& data, int64_t begin, int64_t end);

  // The largest n in [0, max_rows] such that RangeBytes(batch, begin, begin + n) <= budget
  // (0 when even one row does not fit, or budget < 0). Requires begin + max_rows <= num_rows.
  static int64_t RowsWithin(const arrow::RecordBatch& batch, int64_t begin, int64_t max_rows,
                            int64_t budget);

  // The dictionaries `batch` references (top-level and nested, and dictionaries of
  // dictionaries), each with the bytes a block spends on it: its whole values and the framing of
  // its own IPC message. Identified by their array data, so slices of one batch, which share
  // their dictionaries, count them once per block.
  using Dictionaries = std::vector<std::pair<const arrow::ArrayData*, int64_t>>;
  static void CollectDictionaries(const arrow::RecordBatch& batch, Dictionaries* out);

  // Every buffer `batch`'s columns hold, children and dictionaries included, each counted whole
  // per reference: an upper bound on arrow::util::ReferencedBufferSize (what an unencoded
  // block's SealedBlock::size_bytes() counts) and on arrow::util::TotalBufferSize, found by a
  // walk of the array tree that allocates nothing. Equal to both for a batch whose buffers are
  // its own and unshared (a concatenation, say); a slice counts its parent's whole buffers.
  static int64_t BufferBytes(const arrow::RecordBatch& batch);

  // The bytes `batch`'s columns reference, as arrow::util::ReferencedBufferSize counts them (for
  // each buffer, the bytes covering the column's rows: a bitmap's bytes covering its bits, a
  // fixed-width column's values, a binary or string column's offsets and the value bytes they
  // delimit), found by a walk that allocates nothing (Arrow's function builds arrays of byte
  // ranges: microseconds a call). Covers columns without children or dictionaries: null,
  // boolean, fixed-width (numbers, decimals, temporal, fixed-size binary), binary and string and
  // their large_ variants. -1 when a column is of another type (the caller then asks Arrow).
  // Buffers shared by two columns count once per column (Arrow's function counts overlapping
  // ranges once), so for such a batch it is an upper bound.
  static int64_t ReferencedBytes(const arrow::RecordBatch& batch);

  // An upper bound on what a block of `schema` holds beyond RangeBytes of its rows and the bytes
  // of its dictionaries: the record batch message's metadata, prefix and padding, and the
  // per-buffer rounding; `compressed` adds the per-buffer framing of a compressed body.
  static int64_t BlockOverheadBytes(const arrow::Schema& schema, bool compressed);
};

}  // namespace sabot
