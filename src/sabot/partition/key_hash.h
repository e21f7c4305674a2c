#pragma once

// The key hash of HASH partitioning. docs/hashing.md is the normative description (function,
// seeds, canonical byte form of every type, how columns combine, how a hash picks a partition,
// nulls); this code and tests/reference/hash_reference.py both implement it, and golden values
// in key_hash_test.cc pin it. Changing any of it changes where rows go across processes, so it
// is versioned (kKeyHashVersion) and never changed silently.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/array/data.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type.h>

#include "sabot/common/ids.h"

namespace sabot {

inline constexpr int kKeyHashVersion = 1;

// Seed of the row hash, before the first key column is combined in ("SABOT-01" in ASCII).
inline constexpr uint64_t kKeyHashRowSeed = 0x5341424F542D3031ULL;
// The column hash of a null value, whatever the type ("NULLNULL" in ASCII).
inline constexpr uint64_t kKeyHashNull = 0x4E554C4C4E554C4CULL;
// Seed of XXH64 for byte-string values.
inline constexpr uint64_t kKeyHashBytesSeed = 0;

// XXH64 (xxHash, 64-bit variant) of `length` bytes, as published in the xxHash specification.
uint64_t XxHash64(const uint8_t* data, size_t length, uint64_t seed);

// MurmurHash3's 64-bit finalizer (fmix64): a bijection that mixes every input bit into every
// output bit.
inline uint64_t Fmix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xFF51AFD7ED558CCDULL;
  k ^= k >> 33;
  k *= 0xC4CEB9FE1A85EC53ULL;
  k ^= k >> 33;
  return k;
}

// The canonical 64-bit form of a double: -0.0 becomes +0.0 and every NaN becomes
// 0x7FF8000000000000.
uint64_t CanonicalDoubleBits(double value);

// Folds column hash `column_hash` into row hash `row_hash` (order-sensitive). The column hash of
// a fixed-width value is its canonical 64-bit form itself (docs/hashing.md); this step does all
// the mixing, so a single fixed-width key costs one fmix64 per row.
inline uint64_t CombineKeyHash(uint64_t row_hash, uint64_t column_hash) {
  return Fmix64(row_hash * 0x9E3779B97F4A7C15ULL + column_hash);
}

// The partition in [0, num_partitions) that row hash `hash` maps to: Lemire's multiply-shift,
// floor(hash * num_partitions / 2^64). Uses the high bits of the hash.
inline PartitionId HashToPartition(uint64_t hash, int32_t num_partitions) {
  return static_cast<PartitionId>(
      (static_cast<unsigned __int128>(hash) * static_cast<uint32_t>(num_partitions)) >> 64);
}

// True when HASH partitioning can hash a column of type `type` (see docs/hashing.md): integers,
// floats, bool, (large) string and binary, fixed_size_binary, date32/64, time32/64, timestamp,
// decimal128, and dictionary arrays whose value type is one of these.
bool IsHashableKeyType(const arrow::DataType& type);

// Hashes the key columns of record batches: binds the key columns to a schema once (Make), then
// computes one 64-bit row hash per row, a column at a time, with a kernel chosen per column at
// bind time (no per-row virtual calls, no per-row allocation; the scratch for dictionary values
// is reused across batches).
//
// Thread safety: not safe for concurrent use (it owns scratch memory); make one per task.
class KeyHasher {
 public:
  // Binds `key_columns` (in key order) to `schema`. Invalid naming the column when it is
  // missing or ambiguous; TypeError naming the column and its type when it cannot be hashed.
  static arrow::Result<std::unique_ptr<KeyHasher>> Make(const std::vector<std::string>& key_columns,
                                                        const arrow::Schema& schema);

  // Writes the row hash of each row of `batch` to hashes[0, batch.num_rows()). `batch` must
  // have the schema given to Make (the caller checks; Partitioner does).
  arrow::Status Hash(const arrow::RecordBatch& batch, uint64_t* hashes);

  // Hash the given key arrays (one per key column, same length, types as bound). Used by Hash
  // and by callers that hold arrays rather than a batch.
  arrow::Status HashArrays(const std::vector<const arrow::ArrayData*>& keys, int64_t length,
                           uint64_t* hashes);

  // The partition of each row, HashToPartition(row hash, num_partitions), into
  // ids[0, batch.num_rows()), and the number of rows of each partition into
  // counts[0, num_partitions): the fast path of HASH partitioning, with no row hash stored for
  // the last key column (8 rows at a time with AVX-512, when the CPU has it and the last key
  // column is an 8-byte integer type without nulls; the same results either way).
  arrow::Status HashToPartitions(const arrow::RecordBatch& batch, int32_t num_partitions,
                                 PartitionId* ids, int64_t* counts);

  const std::vector<int>& key_indices() const { return key_indices_; }

 private:
  KeyHasher() = default;

  std::vector<int> key_indices_;
  std::vector<uint64_t> dictionary_scratch_;
  std::vector<uint64_t> row_hash_scratch_;
};

}  // namespace sabot
