#include "sabot/memory/row_bytes.h"

#include <algorithm>

#include <arrow/extension_type.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>
#include <arrow/util/checked_cast.h>

namespace sabot {

namespace {

using arrow::internal::checked_cast;

// The bound on one encapsulated IPC message's framing beyond its field nodes and buffers: the
// 8-byte prefix, the flatbuffer tables and vtables of Message and RecordBatch (or
// DictionaryBatch), the optional BodyCompression, and padding the metadata to 8 bytes.
constexpr int64_t kMessageBytes = 320;
// Per field node: its FieldNode entry (16 bytes) in the metadata.
constexpr int64_t kNodeBytes = 16;
// Per buffer (at most three a node, plus variadic ones counted where they are met): its Buffer
// entry (16), padding to 8 bytes (7), and rounding against a per-row count: one more offset
// than rows, a bitmap that starts mid-byte (8).
constexpr int64_t kBufferBytes = 16 + 7 + 8;
constexpr int64_t kBuffersPerNode = 3;
// Per buffer of a compressed body: the uncompressed length prefix (8) and the codec's frame
// header and checksum (64). Data that does not compress can grow by a little more (LZ4_FRAME
// adds 4 bytes per 64 KiB block); a block the bound misses is caught by PartitionBuffer, which
// checks every block's actual size against its limit and cuts it again.
constexpr int64_t kCompressedBufferBytes = 8 + 64;

const arrow::DataType& StorageType(const arrow::DataType& type) {
  if (type.id() == arrow::Type::EXTENSION) {
    return StorageType(*checked_cast<const arrow::ExtensionType&>(type).storage_type());
  }
  return type;
}

int64_t BitmapBytes(int64_t rows) { return (rows + 7) / 8; }

// Field nodes of `type` in a record batch message: itself and its children, recursively; a
// dictionary-encoded field is one node (its values travel in the dictionary's own message).
int64_t CountNodes(const arrow::DataType& type) {
  const arrow::DataType& storage = StorageType(type);
  int64_t nodes = 1;
  if (storage.id() == arrow::Type::DICTIONARY) return nodes;
  for (const auto& child : storage.fields()) nodes += CountNodes(*child->type());
  return nodes;
}

int64_t MessageOverheadBytes(int64_t nodes, bool compressed) {
  const int64_t per_buffer = kBufferBytes + (compressed ? kCompressedBufferBytes : 0);
  return kMessageBytes + nodes * (kNodeBytes + kBuffersPerNode * per_buffer);
}

template <typename Offset>
const Offset* OffsetsOf(const arrow::ArrayData& data) {
  return data.GetValues<Offset>(1);
}

int64_t ChildBytes(const arrow::ArrayData& data, int i, int64_t begin, int64_t end) {
  return RowBytes::RangeBytes(*data.child_data[static_cast<size_t>(i)], begin, end);
}

int64_t WholeChildrenBytes(const arrow::ArrayData& data) {
  int64_t bytes = 0;
  for (const auto& child : data.child_data) bytes += RowBytes::RangeBytes(*child, 0, child->length);
  return bytes;
}

}  // namespace

bool RowBytes::FixedWidth(const arrow::Schema& schema) {
  for (const auto& field : schema.fields()) {
    const arrow::DataType& type = StorageType(*field->type());
    if (type.id() == arrow::Type::DICTIONARY) return false;
    if (type.id() == arrow::Type::NA) continue;
    if (!arrow::is_fixed_width(type.id())) return false;
  }
  return true;
}

namespace {

bool HasDictionary(const arrow::DataType& type) {
  const arrow::DataType& storage = StorageType(type);
  if (storage.id() == arrow::Type::DICTIONARY) return true;
  for (const auto& child : storage.fields()) {
    if (HasDictionary(*child->type())) return true;
  }
  return false;
}

}  // namespace

bool RowBytes::HasDictionaries(const arrow::Schema& schema) {
  for (const auto& field : schema.fields()) {
    if (HasDictionary(*field->type())) return true;
  }
  return false;
}

int64_t RowBytes::RangeBytes(const arrow::ArrayData& data, int64_t begin, int64_t end) {
  const int64_t rows = end - begin;
  if (rows <= 0) return 0;
  const arrow::DataType& type = StorageType(*data.type);
  int64_t bytes = 0;
  // Validity: IPC writes a bitmap only for a column with nulls, but an unencoded block
  // references the bitmap whenever there is one.
  if (type.id() != arrow::Type::NA && !data.buffers.empty() && data.buffers[0] != nullptr) {
    bytes += BitmapBytes(rows);
  }
  switch (type.id()) {
    case arrow::Type::NA:
      return 0;
    case arrow::Type::BOOL:
      return bytes + BitmapBytes(rows);
    case arrow::Type::STRING:
    case arrow::Type::BINARY: {
      const int32_t* offsets = OffsetsOf<int32_t>(data);
      return bytes + rows * 4 + (int64_t{offsets[end]} - offsets[begin]);
    }
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY: {
      const int64_t* offsets = OffsetsOf<int64_t>(data);
      return bytes + rows * 8 + (offsets[end] - offsets[begin]);
    }
    case arrow::Type::STRING_VIEW:
    case arrow::Type::BINARY_VIEW: {
      // 16-byte views; the data buffers a view may point into go whole, with their metadata.
      bytes += rows * 16;
      for (size_t b = 2; b < data.buffers.size(); ++b) {
        if (data.buffers[b]) bytes += data.buffers[b]->size() + kBufferBytes + 8;
      }
      return bytes;
    }
    case arrow::Type::LIST:
    case arrow::Type::MAP: {
      const int32_t* offsets = OffsetsOf<int32_t>(data);
      return bytes + rows * 4 + ChildBytes(data, 0, offsets[begin], offsets[end]);
    }
    case arrow::Type::LARGE_LIST: {
      const int64_t* offsets = OffsetsOf<int64_t>(data);
      return bytes + rows * 8 + ChildBytes(data, 0, offsets[begin], offsets[end]);
    }
    case arrow::Type::FIXED_SIZE_LIST: {
      const int64_t k = checked_cast<const arrow::FixedSizeListType&>(type).list_size();
      return bytes + ChildBytes(data, 0, (data.offset + begin) * k, (data.offset + end) * k);
    }
    case arrow::Type::STRUCT: {
      for (int i = 0; i < static_cast<int>(data.child_data.size()); ++i) {
        bytes += ChildBytes(data, i, data.offset + begin, data.offset + end);
      }
      return bytes;
    }
    case arrow::Type::SPARSE_UNION: {
      bytes += rows;  // type ids
      for (int i = 0; i < static_cast<int>(data.child_data.size()); ++i) {
        bytes += ChildBytes(data, i, data.offset + begin, data.offset + end);
      }
      return bytes;
    }
    case arrow::Type::DENSE_UNION:
      return bytes + rows * 5 + WholeChildrenBytes(data);
    case arrow::Type::LIST_VIEW:
      return bytes + rows * 8 + WholeChildrenBytes(data);
    case arrow::Type::LARGE_LIST_VIEW:
      return bytes + rows * 16 + WholeChildrenBytes(data);
    case arrow::Type::RUN_END_ENCODED:
      return WholeChildrenBytes(data);
    case arrow::Type::DICTIONARY: {
      // The indices; the dictionary is counted per block (CollectDictionaries).
      const auto& index = checked_cast<const arrow::DictionaryType&>(type).index_type();
      const int64_t bits = checked_cast<const arrow::FixedWidthType&>(*index).bit_width();
      return bytes + (rows * bits + 7) / 8;
    }
    default:
      break;
  }
  // Fixed width: booleans, numbers, temporal types, decimals, fixed-size binary.
  if (arrow::is_fixed_width(type.id())) {
    const int64_t bits = checked_cast<const arrow::FixedWidthType&>(type).bit_width();
    return bytes + (rows * bits + 7) / 8;
  }
  // A type this switch does not know: every buffer and child whole, an upper bound.
  for (const auto& buffer : data.buffers) {
    if (buffer) bytes += buffer->size();
  }
  return bytes + WholeChildrenBytes(data);
}

int64_t RowBytes::RangeBytes(const arrow::RecordBatch& batch, int64_t begin, int64_t end) {
  int64_t bytes = 0;
  for (int c = 0; c < batch.num_columns(); ++c) {
    bytes += RangeBytes(*batch.column_data(c), begin, end);
  }
  return bytes;
}

int64_t RowBytes::RowsWithin(const arrow::RecordBatch& batch, int64_t begin, int64_t max_rows,
                             int64_t budget) {
  if (budget < 0 || max_rows <= 0) return 0;
  if (RangeBytes(batch, begin, begin + max_rows) <= budget) return max_rows;
  // Invariant: `fits` rows fit, `over` rows do not.
  int64_t fits = 0;
  int64_t over = max_rows;
  while (over - fits > 1) {
    const int64_t mid = fits + (over - fits) / 2;
    if (RangeBytes(batch, begin, begin + mid) <= budget) {
      fits = mid;
    } else {
      over = mid;
    }
  }
  return fits;
}

namespace {

void CollectFrom(const arrow::ArrayData& data, RowBytes::Dictionaries* out) {
  const arrow::DataType& type = StorageType(*data.type);
  if (type.id() == arrow::Type::DICTIONARY && data.dictionary != nullptr) {
    const arrow::ArrayData* dictionary = data.dictionary.get();
    bool seen = std::any_of(out->begin(), out->end(),
                            [&](const auto& entry) { return entry.first == dictionary; });
    if (!seen) {
      const int64_t bytes =
          RowBytes::RangeBytes(*dictionary, 0, dictionary->length) +
          MessageOverheadBytes(CountNodes(*dictionary->type), /*compressed=*/true);
      out->emplace_back(dictionary, bytes);
      CollectFrom(*dictionary, out);
    }
  }
  for (const auto& child : data.child_data) CollectFrom(*child, out);
}

}  // namespace

void RowBytes::CollectDictionaries(const arrow::RecordBatch& batch, Dictionaries* out) {
  for (int c = 0; c < batch.num_columns(); ++c) CollectFrom(*batch.column_data(c), out);
}

namespace {

int64_t BufferBytesOf(const arrow::ArrayData& data) {
  int64_t bytes = 0;
  for (const auto& buffer : data.buffers) {
    if (buffer) bytes += buffer->size();
  }
  for (const auto& child : data.child_data) bytes += BufferBytesOf(*child);
  if (data.dictionary != nullptr) bytes += BufferBytesOf(*data.dictionary);
  return bytes;
}

}  // namespace

int64_t RowBytes::BufferBytes(const arrow::RecordBatch& batch) {
  int64_t bytes = 0;
  for (int c = 0; c < batch.num_columns(); ++c) bytes += BufferBytesOf(*batch.column_data(c));
  return bytes;
}

namespace {

// Bytes covering bits [bit_offset, bit_offset + bits) of a buffer (as Arrow counts them, a
// byte also for no bits at an offset that is not a multiple of 8).
int64_t CoveringBytes(int64_t bit_offset, int64_t bits) {
  return (bit_offset + bits + 7) / 8 - bit_offset / 8;
}

// ReferencedBytes of one column; -1 for a type it does not cover.
int64_t ReferencedBytesOf(const arrow::ArrayData& data) {
  const arrow::DataType& type = *data.type;
  if (type.id() == arrow::Type::NA) return 0;
  if (!data.child_data.empty() || data.dictionary != nullptr) return -1;
  int64_t bytes = 0;
  if (!data.buffers.empty() && data.buffers[0] != nullptr) {
    bytes += CoveringBytes(data.offset, data.length);
  }
  if (data.buffers.size() < 2 || data.buffers[1] == nullptr) return -1;
  switch (type.id()) {
    case arrow::Type::BINARY:
    case arrow::Type::STRING: {
      if (data.buffers.size() < 3) return -1;
      // An offset a row (Arrow's count leaves out the closing one), and the value bytes the
      // offsets delimit.
      if (data.length == 0) return bytes;
      const int32_t* offsets = data.GetValues<int32_t>(1);
      bytes += data.length * int64_t{sizeof(int32_t)};
      if (data.buffers[2] != nullptr) bytes += offsets[data.length] - offsets[0];
      return bytes;
    }
    case arrow::Type::LARGE_BINARY:
    case arrow::Type::LARGE_STRING: {
      if (data.buffers.size() < 3) return -1;
      if (data.length == 0) return bytes;
      const int64_t* offsets = data.GetValues<int64_t>(1);
      bytes += data.length * int64_t{sizeof(int64_t)};
      if (data.buffers[2] != nullptr) bytes += offsets[data.length] - offsets[0];
      return bytes;
    }
    default:
      break;
  }
  if (!arrow::is_fixed_width(type.id()) || arrow::is_dictionary(type.id()) ||
      type.id() == arrow::Type::EXTENSION ||
      data.buffers.size() != 2) {
    return -1;
  }
  const int64_t bit_width = checked_cast<const arrow::FixedWidthType&>(type).bit_width();
  return bytes + CoveringBytes(data.offset * bit_width, data.length * bit_width);
}

}  // namespace

int64_t RowBytes::ReferencedBytes(const arrow::RecordBatch& batch) {
  int64_t bytes = 0;
  for (int c = 0; c < batch.num_columns(); ++c) {
    const int64_t column = ReferencedBytesOf(*batch.column_data(c));
    if (column < 0) return -1;
    bytes += column;
  }
  return bytes;
}

int64_t RowBytes::BlockOverheadBytes(const arrow::Schema& schema, bool compressed) {
  int64_t nodes = 0;
  for (const auto& field : schema.fields()) nodes += CountNodes(*field->type());
  return MessageOverheadBytes(nodes, compressed);
}

}  // namespace sabot
