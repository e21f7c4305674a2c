#include "sabot/memory/test_wide_batches.h"

#include <arrow/api.h>

namespace sabot::testing {

namespace {

using arrow::Result;

bool IsNull(int64_t row) { return row % 17 == 3; }

// `width` bytes that depend on the row: letters for strings, any byte for binaries.
std::string Value(int64_t row, int64_t width, bool binary) {
  std::string out(static_cast<size_t>(width), '\0');
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = binary ? static_cast<char>((row * 31 + static_cast<int64_t>(j)) % 256)
                    : static_cast<char>('a' + (row + static_cast<int64_t>(j)) % 26);
  }
  return out;
}

template <typename Builder>
Result<std::shared_ptr<arrow::Array>> Flat(int64_t first, int64_t rows, int64_t wide,
                                           bool binary, arrow::MemoryPool* pool) {
  Builder b(pool);
  for (int64_t r = first; r < first + rows; ++r) {
    if (IsNull(r)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(b.Append(Value(r, WideRowWidth(r, wide), binary)));
    }
  }
  return b.Finish();
}

template <typename ListBuilder, typename ValueBuilder>
Result<std::shared_ptr<arrow::Array>> Lists(int64_t first, int64_t rows, int64_t wide,
                                            bool binary, arrow::MemoryPool* pool) {
  auto values = std::make_shared<ValueBuilder>(pool);
  ListBuilder b(pool, values);
  for (int64_t r = first; r < first + rows; ++r) {
    if (IsNull(r)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
      continue;
    }
    ARROW_RETURN_NOT_OK(b.Append());
    for (int64_t e = 0; e < r % 3; ++e) {
      ARROW_RETURN_NOT_OK(values->Append(Value(r + e, WideRowWidth(r, wide) / 2, binary)));
    }
  }
  return b.Finish();
}

// Eight values, two of them (5 and 7) `wide` bytes; row r takes value r % 8.
Result<std::shared_ptr<arrow::Array>> Dictionary(int64_t first, int64_t rows, int64_t wide,
                                                 arrow::MemoryPool* pool) {
  arrow::StringBuilder dict(pool);
  for (int64_t i = 0; i < 8; ++i) {
    ARROW_RETURN_NOT_OK(dict.Append(Value(i, i == 5 || i == 7 ? wide : i, false)));
  }
  ARROW_ASSIGN_OR_RAISE(auto dictionary, dict.Finish());
  arrow::Int32Builder indices(pool);
  for (int64_t r = first; r < first + rows; ++r) {
    if (IsNull(r)) {
      ARROW_RETURN_NOT_OK(indices.AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(indices.Append(static_cast<int32_t>(r % 8)));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
  return arrow::DictionaryArray::FromArrays(WideSchema(WideKind::kDictionary)->field(1)->type(),
                                            index_array, dictionary);
}

Result<std::shared_ptr<arrow::Array>> Struct(int64_t first, int64_t rows, int64_t wide,
                                             arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto s, (Flat<arrow::StringBuilder>(first, rows, wide, false, pool)));
  auto longs = std::make_shared<arrow::Int64Builder>(pool);
  arrow::ListBuilder l(pool, longs);
  for (int64_t r = first; r < first + rows; ++r) {
    ARROW_RETURN_NOT_OK(l.Append());
    for (int64_t e = 0; e < r % 4; ++e) ARROW_RETURN_NOT_OK(longs->Append(r * 10 + e));
  }
  ARROW_ASSIGN_OR_RAISE(auto la, l.Finish());
  auto type = WideSchema(WideKind::kStruct)->field(1)->type();
  // The struct itself is null where its string is: its own validity bitmap.
  arrow::TypedBufferBuilder<bool> validity(pool);
  for (int64_t r = first; r < first + rows; ++r) ARROW_RETURN_NOT_OK(validity.Append(!IsNull(r)));
  ARROW_ASSIGN_OR_RAISE(auto bitmap, validity.Finish());
  return arrow::StructArray::Make({s, la}, type->fields(), std::move(bitmap));
}

}  // namespace

std::vector<WideKind> AllWideKinds() {
  return {WideKind::kString, WideKind::kBinary, WideKind::kLargeString, WideKind::kLargeBinary,
          WideKind::kList,   WideKind::kLargeList, WideKind::kDictionary, WideKind::kStruct};
}

std::string ToString(WideKind kind) {
  switch (kind) {
    case WideKind::kString: return "string";
    case WideKind::kBinary: return "binary";
    case WideKind::kLargeString: return "large_string";
    case WideKind::kLargeBinary: return "large_binary";
    case WideKind::kList: return "list";
    case WideKind::kLargeList: return "large_list";
    case WideKind::kDictionary: return "dictionary";
    case WideKind::kStruct: return "struct";
  }
  return "unknown";
}

std::shared_ptr<arrow::Schema> WideSchema(WideKind kind) {
  std::shared_ptr<arrow::DataType> type;
  switch (kind) {
    case WideKind::kString: type = arrow::utf8(); break;
    case WideKind::kBinary: type = arrow::binary(); break;
    case WideKind::kLargeString: type = arrow::large_utf8(); break;
    case WideKind::kLargeBinary: type = arrow::large_binary(); break;
    case WideKind::kList: type = arrow::list(arrow::utf8()); break;
    case WideKind::kLargeList: type = arrow::large_list(arrow::binary()); break;
    case WideKind::kDictionary: type = arrow::dictionary(arrow::int32(), arrow::utf8()); break;
    case WideKind::kStruct:
      type = arrow::struct_({arrow::field("s", arrow::utf8()),
                             arrow::field("l", arrow::list(arrow::int64()))});
      break;
  }
  return arrow::schema({arrow::field("id", arrow::int64(), /*nullable=*/false),
                        arrow::field("v", type)});
}

int64_t WideRowWidth(int64_t row, int64_t wide_bytes) {
  return row % 400 >= 360 ? wide_bytes : row % 7;
}

namespace {

Result<std::shared_ptr<arrow::Array>> WideColumn(WideKind kind, int64_t first, int64_t rows,
                                                 int64_t wide, arrow::MemoryPool* pool) {
  switch (kind) {
    case WideKind::kString:
      return Flat<arrow::StringBuilder>(first, rows, wide, false, pool);
    case WideKind::kBinary:
      return Flat<arrow::BinaryBuilder>(first, rows, wide, true, pool);
    case WideKind::kLargeString:
      return Flat<arrow::LargeStringBuilder>(first, rows, wide, false, pool);
    case WideKind::kLargeBinary:
      return Flat<arrow::LargeBinaryBuilder>(first, rows, wide, true, pool);
    case WideKind::kList:
      return Lists<arrow::ListBuilder, arrow::StringBuilder>(first, rows, wide, false, pool);
    case WideKind::kLargeList:
      return Lists<arrow::LargeListBuilder, arrow::BinaryBuilder>(first, rows, wide, true, pool);
    case WideKind::kDictionary:
      return Dictionary(first, rows, wide, pool);
    case WideKind::kStruct:
      return Struct(first, rows, wide, pool);
  }
  return arrow::Status::Invalid("unknown wide kind");
}

}  // namespace

Result<std::shared_ptr<arrow::RecordBatch>> MakeWideBatch(WideKind kind, int64_t first_row,
                                                          int64_t rows, int64_t wide_bytes,
                                                          arrow::MemoryPool* pool) {
  arrow::Int64Builder ids(pool);
  for (int64_t r = first_row; r < first_row + rows; ++r) ARROW_RETURN_NOT_OK(ids.Append(r));
  ARROW_ASSIGN_OR_RAISE(auto id, ids.Finish());
  ARROW_ASSIGN_OR_RAISE(auto v, WideColumn(kind, first_row, rows, wide_bytes, pool));
  return arrow::RecordBatch::Make(WideSchema(kind), rows, {id, v});
}

}  // namespace sabot::testing
