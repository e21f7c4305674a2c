#include "sabot/partition/key_hash.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <cstring>

#include <arrow/util/bit_util.h>
#include <arrow/util/decimal.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SABOT_KEY_HASH_AVX512 1
#endif

namespace sabot {

static_assert(std::endian::native == std::endian::little,
              "the key hash reads values in their little-endian in-memory form");

namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t kP5 = 0x27D4EB2F165667C5ULL;

inline uint64_t Read64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint32_t Read32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline uint64_t XxRound(uint64_t acc, uint64_t lane) {
  acc += lane * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}

inline uint64_t XxMergeRound(uint64_t acc, uint64_t val) {
  acc ^= XxRound(0, val);
  return acc * kP1 + kP4;
}

// What a key hash does with each value's column hash: a sink, called once per row in order.
struct RawSink {  // out[i] = column hash (dictionary values)
  void operator()(int64_t i, uint64_t column_hash) const { out[i] = column_hash; }
  uint64_t* out;
};
struct FirstSink {  // out[i] = Combine(kKeyHashRowSeed, column hash)
  void operator()(int64_t i, uint64_t column_hash) const {
    out[i] = CombineKeyHash(kKeyHashRowSeed, column_hash);
  }
  uint64_t* out;
};
struct NextSink {  // out[i] = Combine(out[i], column hash)
  void operator()(int64_t i, uint64_t column_hash) const {
    out[i] = CombineKeyHash(out[i], column_hash);
  }
  uint64_t* out;
};
// The last key column, straight to partition ids and their histogram: the row hashes of the
// earlier columns come from `previous` (nullptr for a single-column key).
struct PartitionSink {
  void operator()(int64_t i, uint64_t column_hash) const {
    const uint64_t row_hash =
        CombineKeyHash(previous == nullptr ? kKeyHashRowSeed : previous[i], column_hash);
    const PartitionId id = HashToPartition(row_hash, num_partitions);
    ids[i] = id;
    ++counts[id];
  }
  const uint64_t* previous;
  PartitionId* ids;
  int64_t* counts;
  int32_t num_partitions;
};

// Runs `value_hash(i)` (the column hash of the non-null value at logical index i) over the
// array, substituting kKeyHashNull for nulls. One tight loop per (type, mode) instantiation.
// `sink` is taken by value: a local copy whose fields the compiler can keep in registers (a
// reference could alias the arrays the sink writes to, forcing a reload per row).
template <typename Sink, typename ValueHash>
void HashLoop(const arrow::ArrayData& array, Sink sink, ValueHash&& value_hash) {
  const int64_t length = array.length;
  const uint8_t* validity =
      array.GetNullCount() != 0 && array.buffers[0] ? array.buffers[0]->data() : nullptr;
  if (validity == nullptr) {
    for (int64_t i = 0; i < length; ++i) sink(i, value_hash(i));
  } else {
    const int64_t offset = array.offset;
    for (int64_t i = 0; i < length; ++i) {
      const uint64_t h =
          arrow::bit_util::GetBit(validity, offset + i) ? value_hash(i) : kKeyHashNull;
      sink(i, h);
    }
  }
}

template <typename T, typename Sink>
void HashSigned(const arrow::ArrayData& array, const Sink& sink) {
  const T* values = array.GetValues<T>(1);
  HashLoop(array, sink,
           [values](int64_t i) { return static_cast<uint64_t>(static_cast<int64_t>(values[i])); });
}

template <typename T, typename Sink>
void HashUnsigned(const arrow::ArrayData& array, const Sink& sink) {
  const T* values = array.GetValues<T>(1);
  HashLoop(array, sink, [values](int64_t i) { return static_cast<uint64_t>(values[i]); });
}

template <typename T, typename Sink>
void HashFloating(const arrow::ArrayData& array, const Sink& sink) {
  const T* values = array.GetValues<T>(1);
  HashLoop(array, sink,
           [values](int64_t i) { return CanonicalDoubleBits(static_cast<double>(values[i])); });
}

template <typename Sink>
void HashBoolean(const arrow::ArrayData& array, const Sink& sink) {
  const uint8_t* bits = array.buffers[1]->data();
  const int64_t offset = array.offset;
  HashLoop(array, sink, [bits, offset](int64_t i) {
    return arrow::bit_util::GetBit(bits, offset + i) ? uint64_t{1} : uint64_t{0};
  });
}

template <typename OffsetType, typename Sink>
void HashBinary(const arrow::ArrayData& array, const Sink& sink) {
  const OffsetType* offsets = array.GetValues<OffsetType>(1);
  const uint8_t* data = array.buffers[2] ? array.buffers[2]->data() : nullptr;
  HashLoop(array, sink, [offsets, data](int64_t i) {
    const OffsetType begin = offsets[i];
    return XxHash64(data + begin, static_cast<size_t>(offsets[i + 1] - begin), kKeyHashBytesSeed);
  });
}

template <typename Sink>
void HashFixedBytes(const arrow::ArrayData& array, int32_t width, const Sink& sink) {
  const uint8_t* data = array.buffers[1]->data() + array.offset * static_cast<int64_t>(width);
  HashLoop(array, sink, [data, width](int64_t i) {
    return XxHash64(data + i * static_cast<int64_t>(width), static_cast<size_t>(width),
                    kKeyHashBytesSeed);
  });
}

template <typename Sink>
arrow::Status HashColumn(const arrow::ArrayData& array, const Sink& sink,
                         std::vector<uint64_t>* scratch);

// Dictionary arrays: the dictionary's values are hashed once (column hashes, in `scratch`), then
// each row takes its index's hash, so a value hashes the same dictionary-encoded or not.
template <typename IndexType, typename Sink>
arrow::Status HashDictionaryIndices(const arrow::ArrayData& array, const uint64_t* value_hashes,
                                    int64_t dictionary_length, const Sink& sink) {
  const IndexType* indices = array.GetValues<IndexType>(1);
  const uint64_t limit = static_cast<uint64_t>(dictionary_length);
  bool out_of_range = false;
  HashLoop(array, sink, [&](int64_t i) {
    const uint64_t index = static_cast<uint64_t>(static_cast<int64_t>(indices[i]));
    const bool bad = index >= limit;
    out_of_range |= bad;
    return bad ? 0 : value_hashes[index];
  });
  if (out_of_range) {
    return arrow::Status::Invalid("dictionary key column has an index outside its dictionary of ",
                                  dictionary_length, " values");
  }
  return arrow::Status::OK();
}

template <typename Sink>
arrow::Status HashDictionary(const arrow::ArrayData& array, const Sink& sink,
                             std::vector<uint64_t>* scratch) {
  const auto& dict_type = static_cast<const arrow::DictionaryType&>(*array.type);
  if (array.dictionary == nullptr) {
    return arrow::Status::Invalid("dictionary key column has no dictionary");
  }
  const arrow::ArrayData& dictionary = *array.dictionary;
  scratch->resize(static_cast<size_t>(dictionary.length));
  // Dictionary values are never dictionaries themselves (IsHashableKeyType), so this recursion
  // does not touch `scratch` again.
  ARROW_RETURN_NOT_OK(HashColumn(dictionary, RawSink{scratch->data()}, nullptr));
  const uint64_t* hashes = scratch->data();
  const int64_t n = dictionary.length;
  switch (dict_type.index_type()->id()) {
    case arrow::Type::INT8:
      return HashDictionaryIndices<int8_t>(array, hashes, n, sink);
    case arrow::Type::INT16:
      return HashDictionaryIndices<int16_t>(array, hashes, n, sink);
    case arrow::Type::INT32:
      return HashDictionaryIndices<int32_t>(array, hashes, n, sink);
    case arrow::Type::INT64:
      return HashDictionaryIndices<int64_t>(array, hashes, n, sink);
    case arrow::Type::UINT8:
      return HashDictionaryIndices<uint8_t>(array, hashes, n, sink);
    case arrow::Type::UINT16:
      return HashDictionaryIndices<uint16_t>(array, hashes, n, sink);
    case arrow::Type::UINT32:
      return HashDictionaryIndices<uint32_t>(array, hashes, n, sink);
    case arrow::Type::UINT64:
      return HashDictionaryIndices<uint64_t>(array, hashes, n, sink);
    default:
      return arrow::Status::TypeError("dictionary index type ", dict_type.index_type()->ToString(),
                                      " is not an integer type");
  }
}

template <typename Sink>
arrow::Status HashColumn(const arrow::ArrayData& array, const Sink& sink,
                         std::vector<uint64_t>* scratch) {
  if (array.length == 0) return arrow::Status::OK();
  switch (array.type->id()) {
    case arrow::Type::INT8:
      HashSigned<int8_t>(array, sink);
      break;
    case arrow::Type::INT16:
      HashSigned<int16_t>(array, sink);
      break;
    case arrow::Type::INT32:
    case arrow::Type::DATE32:
    case arrow::Type::TIME32:
      HashSigned<int32_t>(array, sink);
      break;
    case arrow::Type::INT64:
    case arrow::Type::DATE64:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
      HashSigned<int64_t>(array, sink);
      break;
    case arrow::Type::UINT8:
      HashUnsigned<uint8_t>(array, sink);
      break;
    case arrow::Type::UINT16:
      HashUnsigned<uint16_t>(array, sink);
      break;
    case arrow::Type::UINT32:
      HashUnsigned<uint32_t>(array, sink);
      break;
    case arrow::Type::UINT64:
      HashUnsigned<uint64_t>(array, sink);
      break;
    case arrow::Type::FLOAT:
      HashFloating<float>(array, sink);
      break;
    case arrow::Type::DOUBLE:
      HashFloating<double>(array, sink);
      break;
    case arrow::Type::BOOL:
      HashBoolean(array, sink);
      break;
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      HashBinary<int32_t>(array, sink);
      break;
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      HashBinary<int64_t>(array, sink);
      break;
    case arrow::Type::FIXED_SIZE_BINARY:
    case arrow::Type::DECIMAL128:
      HashFixedBytes(
          array, static_cast<const arrow::FixedSizeBinaryType&>(*array.type).byte_width(), sink);
      break;
    case arrow::Type::DICTIONARY:
      if (scratch == nullptr) {
        return arrow::Status::TypeError("a dictionary's values cannot be dictionary-encoded");
      }
      return HashDictionary(array, sink, scratch);
    default:
      return arrow::Status::TypeError("cannot hash a key column of type ", array.type->ToString());
  }
  return arrow::Status::OK();
}

}  // namespace

uint64_t XxHash64(const uint8_t* data, size_t length, uint64_t seed) {
  const uint8_t* p = data;
  const uint8_t* const end = data + length;
  uint64_t h;
  if (length >= 32) {
    uint64_t v1 = seed + kP1 + kP2;
    uint64_t v2 = seed + kP2;
    uint64_t v3 = seed;
    uint64_t v4 = seed - kP1;
    const uint8_t* const limit = end - 32;
    do {
      v1 = XxRound(v1, Read64(p));
      v2 = XxRound(v2, Read64(p + 8));
      v3 = XxRound(v3, Read64(p + 16));
      v4 = XxRound(v4, Read64(p + 24));
      p += 32;
    } while (p <= limit);
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = XxMergeRound(h, v1);
    h = XxMergeRound(h, v2);
    h = XxMergeRound(h, v3);
    h = XxMergeRound(h, v4);
  } else {
    h = seed + kP5;
  }
  h += static_cast<uint64_t>(length);
  while (p + 8 <= end) {
    h ^= XxRound(0, Read64(p));
    h = std::rotl(h, 27) * kP1 + kP4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= static_cast<uint64_t>(Read32(p)) * kP1;
    h = std::rotl(h, 23) * kP2 + kP3;
    p += 4;
  }
  while (p < end) {
    h ^= static_cast<uint64_t>(*p) * kP5;
    h = std::rotl(h, 11) * kP1;
    ++p;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t CanonicalDoubleBits(double value) {
  if (value != value) return 0x7FF8000000000000ULL;
  if (value == 0.0) return 0;
  return std::bit_cast<uint64_t>(value);
}

bool IsHashableKeyType(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::BOOL:
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::FIXED_SIZE_BINARY:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DECIMAL128:
      return true;
    case arrow::Type::DICTIONARY: {
      const auto& value_type = *static_cast<const arrow::DictionaryType&>(type).value_type();
      return value_type.id() != arrow::Type::DICTIONARY && IsHashableKeyType(value_type);
    }
    default:
      return false;
  }
}

arrow::Result<std::unique_ptr<KeyHasher>> KeyHasher::Make(
    const std::vector<std::string>& key_columns, const arrow::Schema& schema) {
  if (key_columns.empty()) {
    return arrow::Status::Invalid("a key hash needs at least one key column");
  }
  std::unique_ptr<KeyHasher> hasher(new KeyHasher());
  for (const std::string& name : key_columns) {
    const std::vector<int> matches = schema.GetAllFieldIndices(name);
    if (matches.empty()) {
      return arrow::Status::Invalid("key column '", name, "' is not in the input schema (",
                                    schema.ToString(/*show_metadata=*/false), ")");
    }
    if (matches.size() > 1) {
      return arrow::Status::Invalid("key column '", name, "' is ambiguous: the input schema has ",
                                    matches.size(), " fields of that name");
    }
    const arrow::DataType& type = *schema.field(matches[0])->type();
    if (!IsHashableKeyType(type)) {
      return arrow::Status::TypeError(
          "key column '", name, "' has type ", type.ToString(),
          ", which HASH partitioning does not support (supported: integers, floats, bool, "
          "string, large_string, binary, large_binary, fixed_size_binary, date32/64, "
          "time32/64, timestamp, decimal128, and dictionaries of these)");
    }
    hasher->key_indices_.push_back(matches[0]);
  }
  return hasher;
}

arrow::Status KeyHasher::Hash(const arrow::RecordBatch& batch, uint64_t* hashes) {
  std::vector<const arrow::ArrayData*> keys;
  keys.reserve(key_indices_.size());
  for (int index : key_indices_) {
    if (index >= batch.num_columns()) {
      return arrow::Status::Invalid("batch has ", batch.num_columns(),
                                    " columns; key column index ", index, " is out of range");
    }
    keys.push_back(batch.column_data(index).get());
  }
  return HashArrays(keys, batch.num_rows(), hashes);
}

arrow::Status KeyHasher::HashArrays(const std::vector<const arrow::ArrayData*>& keys,
                                    int64_t length, uint64_t* hashes) {
  if (keys.empty()) return arrow::Status::Invalid("a key hash needs at least one key column");
  for (size_t c = 0; c < keys.size(); ++c) {
    if (keys[c]->length != length) {
      return arrow::Status::Invalid("key column ", c, " has ", keys[c]->length, " rows; expected ",
                                    length);
    }
    ARROW_RETURN_NOT_OK(c == 0 ? HashColumn(*keys[c], FirstSink{hashes}, &dictionary_scratch_)
                               : HashColumn(*keys[c], NextSink{hashes}, &dictionary_scratch_));
  }
  return arrow::Status::OK();
}

namespace {

// Whether the column hash of every value of `type` is its 64 bits as stored: the 8-byte integer
// types (docs/hashing.md: a signed value is sign-extended to 64 bits, which changes nothing at
// 8 bytes).
bool IsWordKeyType(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INT64:
    case arrow::Type::UINT64:
    case arrow::Type::DATE64:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
      return true;
    default:
      return false;
  }
}

#ifdef SABOT_KEY_HASH_AVX512
// GCC 12 reports the intrinsics' own _mm512_undefined_* operands as maybe-uninitialized.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// counts[id] += the number of ids[0, n) equal to id. Up to kSplitHistogramMax partitions, four
// histograms on the stack take every fourth id: runs of equal ids (skewed keys, few partitions)
// then do not wait for the previous increment of the same counter to be stored.
constexpr int32_t kSplitHistogramMax = 1024;
void CountIds(const PartitionId* ids, int64_t n, int32_t num_partitions, int64_t* counts) {
  if (num_partitions > kSplitHistogramMax || n > std::numeric_limits<uint32_t>::max()) {
    for (int64_t j = 0; j < n; ++j) ++counts[ids[j]];
    return;
  }
  uint32_t split[4][kSplitHistogramMax];
  for (auto& histogram : split) std::fill(histogram, histogram + num_partitions, 0u);
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    ++split[0][ids[j]];
    ++split[1][ids[j + 1]];
    ++split[2][ids[j + 2]];
    ++split[3][ids[j + 3]];
  }
  for (; j < n; ++j) ++split[0][ids[j]];
  for (int32_t p = 0; p < num_partitions; ++p) {
    counts[p] += int64_t{split[0][p]} + split[1][p] + split[2][p] + split[3][p];
  }
}

// How far ahead of the hash loop the key column is prefetched.
constexpr uintptr_t kKeyPrefetchBytes = 4096;

// PartitionSink over a column of 8-byte integers without nulls, 8 rows per AVX-512 step: the
// same arithmetic as CombineKeyHash and HashToPartition, lane by lane. The high 64 bits of
// hash * num_partitions (num_partitions < 2^32) are
// (hi32(hash) * num_partitions + ((lo32(hash) * num_partitions) >> 32)) >> 32, exactly.
__attribute__((target("avx512f,avx512dq"))) void WordsToPartitionsAvx512(
    const uint64_t* values, const uint64_t* previous, int64_t n, int32_t num_partitions,
    PartitionId* ids, int64_t* counts) {
  const __m512i golden = _mm512_set1_epi64(static_cast<int64_t>(0x9E3779B97F4A7C15ULL));
  const __m512i seeded =
      _mm512_set1_epi64(static_cast<int64_t>(kKeyHashRowSeed * 0x9E3779B97F4A7C15ULL));
  const __m512i m1 = _mm512_set1_epi64(static_cast<int64_t>(0xFF51AFD7ED558CCDULL));
  const __m512i m2 = _mm512_set1_epi64(static_cast<int64_t>(0xC4CEB9FE1A85EC53ULL));
  const __m512i parts =
      _mm512_set1_epi64(static_cast<int64_t>(static_cast<uint32_t>(num_partitions)));
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // The key column is usually not in cache; the hardware prefetcher alone leaves these loads
    // waiting (measured: 7 to 10% of the whole partitioning at 64 and 512 partitions).
    // Integer arithmetic: the address may lie past the column (a prefetch never faults).
    _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(values + i) +
                                               kKeyPrefetchBytes),
                 _MM_HINT_T0);
    const __m512i v = _mm512_loadu_si512(values + i);
    __m512i k = previous == nullptr
                    ? _mm512_add_epi64(seeded, v)
                    : _mm512_add_epi64(
                          _mm512_mullo_epi64(_mm512_loadu_si512(previous + i), golden), v);
    k = _mm512_xor_si512(k, _mm512_srli_epi64(k, 33));
    k = _mm512_mullo_epi64(k, m1);
    k = _mm512_xor_si512(k, _mm512_srli_epi64(k, 33));
    k = _mm512_mullo_epi64(k, m2);
    k = _mm512_xor_si512(k, _mm512_srli_epi64(k, 33));
    const __m512i lo = _mm512_mul_epu32(k, parts);
    const __m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(k, 32), parts);
    const __m512i id = _mm512_srli_epi64(_mm512_add_epi64(hi, _mm512_srli_epi64(lo, 32)), 32);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ids + i), _mm512_cvtepi64_epi32(id));
  }
  // The histogram after the ids (a load right behind the vector store of the same ids would
  // wait for it).
  CountIds(ids, i, num_partitions, counts);
  for (; i < n; ++i) {
    const uint64_t row_hash =
        CombineKeyHash(previous == nullptr ? kKeyHashRowSeed : previous[i], values[i]);
    const PartitionId id = HashToPartition(row_hash, num_partitions);
    ids[i] = id;
    ++counts[id];
  }
}

#pragma GCC diagnostic pop

bool HasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  return has;
}
#endif

}  // namespace

arrow::Status KeyHasher::HashToPartitions(const arrow::RecordBatch& batch, int32_t num_partitions,
                                          PartitionId* ids, int64_t* counts) {
  if (num_partitions < 1 || num_partitions > kMaxPartitions) {
    return arrow::Status::Invalid("number of partitions must be between 1 and ", kMaxPartitions,
                                  ", got ", num_partitions);
  }
  const int64_t n = batch.num_rows();
  std::fill(counts, counts + num_partitions, 0);
  const size_t num_keys = key_indices_.size();
  for (int index : key_indices_) {
    if (index >= batch.num_columns() || batch.column_data(index)->length != n) {
      return arrow::Status::Invalid("batch does not have the key columns this hasher was bound to");
    }
  }
  const uint64_t* previous = nullptr;
  if (num_keys > 1) {
    row_hash_scratch_.resize(static_cast<size_t>(n));
    uint64_t* hashes = row_hash_scratch_.data();
    for (size_t c = 0; c + 1 < num_keys; ++c) {
      const arrow::ArrayData& key = *batch.column_data(key_indices_[c]);
      ARROW_RETURN_NOT_OK(c == 0 ? HashColumn(key, FirstSink{hashes}, &dictionary_scratch_)
                                 : HashColumn(key, NextSink{hashes}, &dictionary_scratch_));
    }
    previous = hashes;
  }
  if (n == 0) return arrow::Status::OK();
#ifdef SABOT_KEY_HASH_AVX512
  const arrow::ArrayData& last = *batch.column_data(key_indices_.back());
  if (IsWordKeyType(*last.type) && (last.buffers[0] == nullptr || last.GetNullCount() == 0) &&
      HasAvx512()) {
    WordsToPartitionsAvx512(last.GetValues<uint64_t>(1), previous, n, num_partitions, ids, counts);
    return arrow::Status::OK();
  }
#endif
  return HashColumn(*batch.column_data(key_indices_.back()),
                    PartitionSink{previous, ids, counts, num_partitions}, &dictionary_scratch_);
}

}  // namespace sabot
