#include "sabot/partition/row_scatter.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/exec.h>
#include <arrow/datum.h>
#include <arrow/type.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/bitmap_ops.h>

namespace sabot {

namespace {

// Rows per chunk of destinations (16 KiB of them).
constexpr int64_t kChunkRows = 4096;
// Up to this many partitions, 8-byte columns are scattered together.
constexpr int32_t kMaxPartitionsToFuse = 16;

// out bit j = in bit (in_offset + perm[j]), for j in [0, n). `out` has room for n bits, rounded
// up to whole bytes; every byte is written.
void GatherBits(const uint8_t* in, int64_t in_offset, const uint32_t* perm, int64_t n,
                uint8_t* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    uint8_t byte = 0;
    for (int k = 0; k < 8; ++k) {
      byte |= static_cast<uint8_t>(arrow::bit_util::GetBit(in, in_offset + perm[j + k]) << k);
    }
    out[j >> 3] = byte;
  }
  if (j < n) {
    uint8_t byte = 0;
    for (int k = 0; j + k < n; ++k) {
      byte |= static_cast<uint8_t>(arrow::bit_util::GetBit(in, in_offset + perm[j + k]) << k);
    }
    out[j >> 3] = byte;
  }
}

struct Bytes16 {
  uint64_t lo;
  uint64_t hi;
};

// out[dest[i]] = in[i], for i in [0, n): reads in order, writes one sequential stream per
// partition.
template <typename T>
void ScatterValues(const uint8_t* in_bytes, const uint32_t* __restrict dest, int64_t n,
                   uint8_t* out_bytes) {
  const T* __restrict in = reinterpret_cast<const T*>(in_bytes);
  T* __restrict out = reinterpret_cast<T*>(out_bytes);
  for (int64_t i = 0; i < n; ++i) out[dest[i]] = in[i];
}

// ScatterValues over `k` (1 to 4) columns of the same width at once, rows [begin, begin + n) of
// the inputs by dest[0, n): one read of each destination for all of them.
template <typename T>
void ScatterValuesTogether(const uint8_t* const* in_bytes, uint8_t* const* out_bytes, int k,
                           const uint32_t* __restrict dest, int64_t begin, int64_t n) {
  auto in = [&](int c) { return reinterpret_cast<const T*>(in_bytes[c]) + begin; };
  auto out = [&](int c) { return reinterpret_cast<T*>(out_bytes[c]); };
  const uint32_t* __restrict d = dest;
  switch (k) {
    case 4: {
      const T *__restrict a = in(0), *__restrict b = in(1), *__restrict c = in(2),
                              *__restrict e = in(3);
      T *__restrict oa = out(0), *__restrict ob = out(1), *__restrict oc = out(2),
                    *__restrict oe = out(3);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t j = d[i];
        oa[j] = a[i];
        ob[j] = b[i];
        oc[j] = c[i];
        oe[j] = e[i];
      }
      return;
    }
    case 3: {
      const T *__restrict a = in(0), *__restrict b = in(1), *__restrict c = in(2);
      T *__restrict oa = out(0), *__restrict ob = out(1), *__restrict oc = out(2);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t j = d[i];
        oa[j] = a[i];
        ob[j] = b[i];
        oc[j] = c[i];
      }
      return;
    }
    case 2: {
      const T *__restrict a = in(0), *__restrict b = in(1);
      T *__restrict oa = out(0), *__restrict ob = out(1);
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t j = d[i];
        oa[j] = a[i];
        ob[j] = b[i];
      }
      return;
    }
    default:
      return ScatterValues<T>(in_bytes[0] + begin * static_cast<int64_t>(sizeof(T)), d, n,
                              out_bytes[0]);
  }
}

void ScatterFixedWidth(const uint8_t* in, int64_t width, const uint32_t* dest, int64_t n,
                       uint8_t* out) {
  switch (width) {
    case 1:
      return ScatterValues<uint8_t>(in, dest, n, out);
    case 2:
      return ScatterValues<uint16_t>(in, dest, n, out);
    case 4:
      return ScatterValues<uint32_t>(in, dest, n, out);
    case 8:
      return ScatterValues<uint64_t>(in, dest, n, out);
    case 16:
      return ScatterValues<Bytes16>(in, dest, n, out);
    default:
      for (int64_t i = 0; i < n; ++i) {
        std::memcpy(out + static_cast<int64_t>(dest[i]) * width, in + i * width,
                    static_cast<size_t>(width));
      }
  }
}

template <typename OffsetType>
arrow::Result<std::shared_ptr<arrow::ArrayData>> GatherBinary(
    const arrow::ArrayData& column, std::shared_ptr<arrow::Buffer> validity, int64_t null_count,
    const uint32_t* perm, int64_t n, arrow::MemoryPool* pool) {
  const OffsetType* in_offsets = column.GetValues<OffsetType>(1);
  const uint8_t* in_data = column.buffers[2] ? column.buffers[2]->data() : nullptr;
  ARROW_ASSIGN_OR_RAISE(auto offsets_buffer,
                        arrow::AllocateBuffer((n + 1) * sizeof(OffsetType), pool));
  auto* out_offsets = reinterpret_cast<OffsetType*>(offsets_buffer->mutable_data());
  // Pass 1: output offsets. The total never exceeds the input's byte range, so it fits.
  OffsetType total = 0;
  out_offsets[0] = 0;
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t row = perm[j];
    total += in_offsets[row + 1] - in_offsets[row];
    out_offsets[j + 1] = total;
  }
  // Pass 2: bytes (none when every value is empty).
  ARROW_ASSIGN_OR_RAISE(auto data_buffer, arrow::AllocateBuffer(total, pool));
  uint8_t* out_data = data_buffer->mutable_data();
  for (int64_t j = 0; total > 0 && j < n; ++j) {
    const uint32_t row = perm[j];
    const OffsetType begin = in_offsets[row];
    std::memcpy(out_data + out_offsets[j], in_data + begin,
                static_cast<size_t>(in_offsets[row + 1] - begin));
  }
  return arrow::ArrayData::Make(
      column.type, n, {std::move(validity), std::move(offsets_buffer), std::move(data_buffer)},
      null_count);
}

// The fixed-width types whose values are gathered by byte width: no children, a whole number of
// bytes per value. Dictionary arrays are gathered through their indices this way.
bool IsByteWidthGatherable(const arrow::DataType& type) {
  if (type.id() == arrow::Type::BOOL || type.num_fields() != 0) return false;
  if (type.id() == arrow::Type::EXTENSION) return false;
  const auto* fixed = dynamic_cast<const arrow::FixedWidthType*>(&type);
  return fixed != nullptr && fixed->bit_width() > 0 && fixed->bit_width() % 8 == 0;
}

// Whether `out` starts a cache line, as write-combining needs (Arrow pools align to 64 bytes).
bool IsLineAligned(const uint8_t* out) { return reinterpret_cast<uintptr_t>(out) % 64 == 0; }

// Whether gathering `column` needs the permutation: everything but fixed-width values without
// a validity bitmap to gather, which are scattered by destination.
bool NeedsPermutation(const arrow::ArrayData& column) {
  if (!IsByteWidthGatherable(*column.type)) return true;
  return column.buffers[0] != nullptr && column.GetNullCount() != 0;
}

}  // namespace

arrow::Result<std::unique_ptr<RowScatter>> RowScatter::Make(int32_t num_partitions,
                                                            arrow::MemoryPool* pool) {
  ARROW_RETURN_NOT_OK(ValidateCount(num_partitions, "number of partitions"));
  if (pool == nullptr) return arrow::Status::Invalid("RowScatter needs a memory pool");
  std::unique_ptr<RowScatter> scatter(new RowScatter(num_partitions, pool));
  scatter->counts_.resize(num_partitions);
  scatter->starts_.resize(num_partitions);
  scatter->cursors_.resize(num_partitions);
  return scatter;
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> RowScatter::Scatter(
    const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids) {
  if (batch == nullptr) return arrow::Status::Invalid("RowScatter::Scatter got a null batch");
  std::vector<std::shared_ptr<arrow::RecordBatch>> out(num_partitions_);
  const int64_t n = batch->num_rows();
  if (n == 0) return out;
  if (n > std::numeric_limits<uint32_t>::max()) {
    return arrow::Status::CapacityError("cannot scatter a batch of ", n, " rows; at most ",
                                        std::numeric_limits<uint32_t>::max(), " are supported");
  }

  // Histogram, checking every id.
  std::fill(counts_.begin(), counts_.end(), 0);
  const uint32_t limit = static_cast<uint32_t>(num_partitions_);
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t id = static_cast<uint32_t>(ids[i]);
    bad |= id >= limit;
    counts_[id < limit ? id : 0]++;
  }
  if (bad) {
    for (int64_t i = 0; i < n; ++i) {
      if (ids[i] < 0 || ids[i] >= num_partitions_) {
        return arrow::Status::Invalid("row ", i, " has partition id ", ids[i], ", outside [0, ",
                                      num_partitions_, ")");
      }
    }
  }
  return ScatterWithHistogram(batch, ids);
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> RowScatter::ScatterCounted(
    const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids,
    const int64_t* counts) {
  if (batch == nullptr) return arrow::Status::Invalid("RowScatter::Scatter got a null batch");
  const int64_t n = batch->num_rows();
  if (n == 0) return std::vector<std::shared_ptr<arrow::RecordBatch>>(num_partitions_);
  if (n > std::numeric_limits<uint32_t>::max()) {
    return arrow::Status::CapacityError("cannot scatter a batch of ", n, " rows; at most ",
                                        std::numeric_limits<uint32_t>::max(), " are supported");
  }
  int64_t total = 0;
  for (int32_t p = 0; p < num_partitions_; ++p) {
    if (counts[p] < 0) {
      return arrow::Status::Invalid("partition ", p, " has a negative row count ", counts[p]);
    }
    counts_[p] = counts[p];
    total += counts[p];
  }
  if (total != n) {
    return arrow::Status::Invalid("partition row counts add up to ", total, ", not the batch's ", n,
                                  " rows");
  }
  return ScatterWithHistogram(batch, ids);
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> RowScatter::ScatterWithHistogram(
    const std::shared_ptr<arrow::RecordBatch>& batch, const PartitionId* ids) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out(num_partitions_);
  const int64_t n = batch->num_rows();
  // All rows to one partition: the input itself.
  if (counts_[ids[0]] == n) {
    out[ids[0]] = batch;
    return out;
  }

  int64_t start = 0;
  for (int32_t p = 0; p < num_partitions_; ++p) {
    starts_[p] = start;
    cursors_[p] = static_cast<uint32_t>(start);
    start += counts_[p];
  }
  const int num_columns = batch->num_columns();
  std::vector<std::vector<std::shared_ptr<arrow::ArrayData>>> columns(num_partitions_);
  for (int32_t p = 0; p < num_partitions_; ++p) {
    if (counts_[p] != 0) columns[p].reserve(static_cast<size_t>(num_columns));
  }

  // The output values of fixed-width columns, scattered below.
  std::vector<std::shared_ptr<arrow::Buffer>> values(static_cast<size_t>(num_columns));
  struct FixedColumn {
    const uint8_t* in;
    int64_t width;
    uint8_t* out;
  };
  std::vector<FixedColumn> fixed;
  int64_t fixed_row_bytes = 0;
  // Whether a column needs the permutation (bit gathers, var-binary, the Take fallback).
  bool need_permutation = false;
  for (int c = 0; c < num_columns; ++c) {
    const arrow::ArrayData& column = *batch->column_data(c);
    need_permutation |= NeedsPermutation(column);
    if (!IsByteWidthGatherable(*column.type)) continue;
    const int64_t width = static_cast<const arrow::FixedWidthType&>(*column.type).bit_width() / 8;
    ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(n * width, pool_));
    fixed.push_back({column.buffers[1]->data() + column.offset * width, width,
                     buffer->mutable_data()});
    fixed_row_bytes += width;
    values[static_cast<size_t>(c)] = std::move(buffer);
  }

  // Large outputs: write-combined, one pass over the ids per group of same-width columns.
  // The rest by each row's destination below: with few partitions, 8-byte columns up to 4 at a
  // time (one read of each destination for all of them); with many, one at a time, which keeps
  // fewer write streams open (measured: fusing wins at 8 partitions, loses at 64).
  const bool write_combining = WriteCombiningScatter::Pays(n, fixed_row_bytes, num_partitions_);
  std::vector<const uint8_t*> group_in;
  std::vector<uint8_t*> group_out;
  std::vector<FixedColumn> single;
  std::vector<WriteCombiningScatter::Column> combined[WriteCombiningScatter::kMaxWidth + 1];
  for (const FixedColumn& column : fixed) {
    if (write_combining && WriteCombiningScatter::SupportsWidth(column.width) &&
        IsLineAligned(column.out)) {
      combined[column.width].push_back({column.in, column.out});
    } else if (column.width == 8 && num_partitions_ <= kMaxPartitionsToFuse) {
      group_in.push_back(column.in);
      group_out.push_back(column.out);
    } else {
      single.push_back(column);
    }
  }
  for (int64_t width = 1; width <= WriteCombiningScatter::kMaxWidth; ++width) {
    if (combined[width].empty()) continue;
    write_combining_.Scatter(width, combined[width], ids, n, starts_.data(), num_partitions_);
  }

  // Each row's place in the output, dest[i] = cursor[ids[i]]++, computed and used a chunk of rows
  // at a time: the chunk's destinations stay in L1 while every fixed-width column left is
  // scattered by them, and each column's write streams stay cached from one chunk to the next.
  // When a column needs it, the permutation (the inverse of dest: the rows listed partition by
  // partition) is built in the same pass.
  uint32_t* __restrict cursors = cursors_.data();
  uint32_t* __restrict perm = nullptr;
  if (need_permutation) {
    permutation_.resize(static_cast<size_t>(n));
    perm = permutation_.data();
  }
  const bool need_destinations = need_permutation || !group_in.empty() || !single.empty();
  destinations_.resize(static_cast<size_t>(kChunkRows));
  uint32_t* __restrict dest = destinations_.data();
  for (int64_t begin = 0; need_destinations && begin < n; begin += kChunkRows) {
    const int64_t length = std::min(kChunkRows, n - begin);
    const PartitionId* chunk_ids = ids + begin;
    if (perm != nullptr) {
      for (int64_t i = 0; i < length; ++i) {
        const uint32_t d = cursors[chunk_ids[i]]++;
        dest[i] = d;
        perm[d] = static_cast<uint32_t>(begin + i);
      }
    } else {
      for (int64_t i = 0; i < length; ++i) dest[i] = cursors[chunk_ids[i]]++;
    }
    for (size_t g = 0; g < group_in.size(); g += 4) {
      ScatterValuesTogether<uint64_t>(group_in.data() + g, group_out.data() + g,
                                      static_cast<int>(std::min<size_t>(4, group_in.size() - g)),
                                      dest, begin, length);
    }
    for (const FixedColumn& column : single) {
      ScatterFixedWidth(column.in + begin * column.width, column.width, dest, length, column.out);
    }
  }

  for (int c = 0; c < num_columns; ++c) {
    ARROW_ASSIGN_OR_RAISE(auto gathered, GatherColumn(*batch->column_data(c),
                                                      std::move(values[static_cast<size_t>(c)])));
    // Null counts per slice: 0 without nulls, counted from the validity bitmap when there is
    // one (cheap: a popcount), unknown otherwise (types without a validity bitmap).
    const bool has_validity = !gathered->buffers.empty() && gathered->buffers[0] != nullptr;
    for (int32_t p = 0; p < num_partitions_; ++p) {
      if (counts_[p] == 0) continue;
      std::shared_ptr<arrow::ArrayData> slice = gathered->Slice(starts_[p], counts_[p]);
      if (gathered->null_count == 0) {
        slice->null_count = 0;
      } else if (has_validity) {
        slice->null_count =
            counts_[p] - arrow::internal::CountSetBits(gathered->buffers[0]->data(),
                                                       gathered->offset + starts_[p], counts_[p]);
      }
      columns[p].push_back(std::move(slice));
    }
  }
  for (int32_t p = 0; p < num_partitions_; ++p) {
    if (counts_[p] == 0) continue;
    out[p] = arrow::RecordBatch::Make(batch->schema(), counts_[p], std::move(columns[p]));
  }
  return out;
}

arrow::Result<std::shared_ptr<arrow::ArrayData>> RowScatter::GatherColumn(
    const arrow::ArrayData& column, std::shared_ptr<arrow::Buffer> values) {
  const int64_t n = column.length;
  const uint32_t* perm = permutation_.data();
  const arrow::DataType& type = *column.type;
  const bool is_simple = type.id() == arrow::Type::BOOL || IsByteWidthGatherable(type) ||
                         type.id() == arrow::Type::STRING || type.id() == arrow::Type::BINARY ||
                         type.id() == arrow::Type::LARGE_STRING ||
                         type.id() == arrow::Type::LARGE_BINARY;
  if (!is_simple) {
    // General fallback: arrow::compute's Take with the permutation as indices.
    auto indices = std::make_shared<arrow::UInt32Array>(
        n, std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(perm),
                                           n * static_cast<int64_t>(sizeof(uint32_t))));
    arrow::compute::ExecContext context(pool_);
    ARROW_ASSIGN_OR_RAISE(
        arrow::Datum taken,
        arrow::compute::Take(arrow::Datum(std::make_shared<arrow::ArrayData>(column)),
                             arrow::Datum(indices), arrow::compute::TakeOptions::NoBoundsCheck(),
                             &context));
    return taken.array();
  }

  std::shared_ptr<arrow::Buffer> validity;
  const int64_t null_count = column.GetNullCount();
  if (null_count != 0 && column.buffers[0] != nullptr) {
    ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateBitmap(n, pool_));
    GatherBits(column.buffers[0]->data(), column.offset, perm, n, validity->mutable_data());
  }
  const int64_t out_null_count = validity ? null_count : 0;

  switch (type.id()) {
    case arrow::Type::BOOL: {
      ARROW_ASSIGN_OR_RAISE(auto bits, arrow::AllocateBitmap(n, pool_));
      GatherBits(column.buffers[1]->data(), column.offset, perm, n, bits->mutable_data());
      return arrow::ArrayData::Make(column.type, n, {std::move(validity), std::move(bits)},
                                    out_null_count);
    }
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return GatherBinary<int32_t>(column, std::move(validity), out_null_count, perm, n, pool_);
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return GatherBinary<int64_t>(column, std::move(validity), out_null_count, perm, n, pool_);
    default:
      break;
  }
  auto data = arrow::ArrayData::Make(column.type, n, {std::move(validity), std::move(values)},
                                     out_null_count);
  data->dictionary = column.dictionary;
  return data;
}

}  // namespace sabot
