#include "sabot/memory/test_batches.h"

#include <arrow/api.h>
#include <arrow/compute/cast.h>

namespace sabot::testing {

namespace {

using arrow::Result;

std::shared_ptr<arrow::DataType> DenseType(const std::shared_ptr<arrow::DataType>& type) {
  switch (type->id()) {
    case arrow::Type::DICTIONARY:
      return DenseType(static_cast<const arrow::DictionaryType&>(*type).value_type());
    case arrow::Type::LIST:
      return arrow::list(DenseType(static_cast<const arrow::ListType&>(*type).value_type()));
    case arrow::Type::STRUCT: {
      arrow::FieldVector fields;
      for (const auto& f : type->fields()) fields.push_back(f->WithType(DenseType(f->type())));
      return arrow::struct_(fields);
    }
    default:
      return type;
  }
}

std::string Word(int64_t v) { return "w" + std::to_string(v * 7919 % 1000) + std::string(v % 5, 'x'); }

Result<std::shared_ptr<arrow::Array>> Int64s(int64_t first, int64_t rows, bool nulls,
                                             arrow::MemoryPool* pool) {
  arrow::Int64Builder b(pool);
  ARROW_RETURN_NOT_OK(b.Reserve(rows));
  for (int64_t r = first; r < first + rows; ++r) {
    if (nulls && r % 7 == 3) {
      b.UnsafeAppendNull();
    } else {
      b.UnsafeAppend(r * 16 + 1);
    }
  }
  return b.Finish();
}

Result<std::shared_ptr<arrow::Array>> Strings(int64_t first, int64_t rows, bool nulls,
                                              arrow::MemoryPool* pool) {
  arrow::StringBuilder b(pool);
  for (int64_t r = first; r < first + rows; ++r) {
    if (nulls && r % 11 == 5) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
    } else if (r % 13 == 0) {
      ARROW_RETURN_NOT_OK(b.Append(""));
    } else {
      ARROW_RETURN_NOT_OK(b.Append("row-" + std::to_string(r) + "-" + Word(r)));
    }
  }
  return b.Finish();
}

// Offsets for a list column whose row r has r % 4 elements; `*total` gets the value count.
Result<std::shared_ptr<arrow::Array>> ListOffsets(int64_t first, int64_t rows, int64_t* total,
                                                  arrow::MemoryPool* pool) {
  arrow::Int32Builder b(pool);
  int32_t offset = 0;
  ARROW_RETURN_NOT_OK(b.Append(offset));
  for (int64_t r = first; r < first + rows; ++r) {
    offset += static_cast<int32_t>(r % 4);
    ARROW_RETURN_NOT_OK(b.Append(offset));
  }
  *total = offset;
  return b.Finish();
}

// First value index of row `first` in the global value sequence of ListOffsets.
int64_t ListValueStart(int64_t first) {
  // Sum over r < first of r % 4.
  return (first / 4) * 6 + ((first % 4) * ((first % 4) - 1)) / 2;
}

Result<std::shared_ptr<arrow::Array>> IntList(int64_t first, int64_t rows,
                                              arrow::MemoryPool* pool) {
  int64_t total = 0;
  ARROW_ASSIGN_OR_RAISE(auto offsets, ListOffsets(first, rows, &total, pool));
  ARROW_ASSIGN_OR_RAISE(auto values, Int64s(ListValueStart(first), total, true, pool));
  return arrow::ListArray::FromArrays(*offsets, *values, pool);
}

Result<std::shared_ptr<arrow::Array>> StringListList(int64_t first, int64_t rows,
                                                     arrow::MemoryPool* pool) {
  int64_t total = 0;
  ARROW_ASSIGN_OR_RAISE(auto offsets, ListOffsets(first, rows, &total, pool));
  ARROW_ASSIGN_OR_RAISE(auto inner, IntList(ListValueStart(first), total, pool));
  // Inner lists of strings: reuse the inner offsets with string values.
  const auto& inner_list = static_cast<const arrow::ListArray&>(*inner);
  ARROW_ASSIGN_OR_RAISE(auto strings,
                        Strings(ListValueStart(ListValueStart(first)),
                                inner_list.value_offset(inner_list.length()), false, pool));
  ARROW_ASSIGN_OR_RAISE(auto inner_strings,
                        arrow::ListArray::FromArrays(*inner_list.offsets(), *strings, pool));
  return arrow::ListArray::FromArrays(*offsets, *inner_strings, pool);
}

// A dictionary column whose dictionary depends on the batch's first row (so consecutive
// batches carry different dictionaries) while each row's value depends on the row only.
template <typename IndexBuilder>
Result<std::shared_ptr<arrow::Array>> Dictionary(const std::shared_ptr<arrow::DataType>& type,
                                                 int64_t first, int64_t rows,
                                                 arrow::MemoryPool* pool) {
  // Row r has value "v<r % 10>"; the dictionary lists the ten values rotated by `first`.
  arrow::StringBuilder dict(pool);
  const int64_t shift = first % 10;
  for (int64_t i = 0; i < 10; ++i) {
    ARROW_RETURN_NOT_OK(dict.Append("v" + std::to_string((i + shift) % 10)));
  }
  ARROW_ASSIGN_OR_RAISE(auto dictionary, dict.Finish());
  IndexBuilder indices(pool);
  for (int64_t r = first; r < first + rows; ++r) {
    if (r % 9 == 4) {
      ARROW_RETURN_NOT_OK(indices.AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(indices.Append(static_cast<typename IndexBuilder::value_type>(
          ((r % 10) - shift + 10) % 10)));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
  return arrow::DictionaryArray::FromArrays(type, index_array, dictionary);
}

}  // namespace

std::vector<TestSchemaKind> AllTestSchemaKinds() {
  return {TestSchemaKind::kPrimitive,   TestSchemaKind::kStrings,
          TestSchemaKind::kNestedLists, TestSchemaKind::kStruct,
          TestSchemaKind::kDictionary,  TestSchemaKind::kNestedDictionary,
          TestSchemaKind::kEverything};
}

std::string ToString(TestSchemaKind kind) {
  switch (kind) {
    case TestSchemaKind::kPrimitive: return "primitive";
    case TestSchemaKind::kStrings: return "strings";
    case TestSchemaKind::kNestedLists: return "nested_lists";
    case TestSchemaKind::kStruct: return "struct";
    case TestSchemaKind::kDictionary: return "dictionary";
    case TestSchemaKind::kNestedDictionary: return "nested_dictionary";
    case TestSchemaKind::kEverything: return "everything";
  }
  return "unknown";
}

namespace {

const auto kDict32 = arrow::dictionary(arrow::int32(), arrow::utf8());
const auto kDict16 = arrow::dictionary(arrow::int16(), arrow::utf8());

arrow::FieldVector FieldsOf(TestSchemaKind kind) {
  switch (kind) {
    case TestSchemaKind::kPrimitive:
      return {arrow::field("i", arrow::int64()), arrow::field("d", arrow::float64()),
              arrow::field("b", arrow::boolean())};
    case TestSchemaKind::kStrings:
      return {arrow::field("s", arrow::utf8()), arrow::field("ls", arrow::large_utf8()),
              arrow::field("bin", arrow::binary())};
    case TestSchemaKind::kNestedLists:
      return {arrow::field("li", arrow::list(arrow::int64())),
              arrow::field("lls", arrow::list(arrow::list(arrow::utf8())))};
    case TestSchemaKind::kStruct:
      return {arrow::field("st", arrow::struct_({arrow::field("a", arrow::int32()),
                                                 arrow::field("b", arrow::utf8()),
                                                 arrow::field("c", arrow::list(arrow::int64()))}))};
    case TestSchemaKind::kDictionary:
      return {arrow::field("k", arrow::int64()), arrow::field("dict", kDict32)};
    case TestSchemaKind::kNestedDictionary:
      return {arrow::field("ldict", arrow::list(kDict16))};
    case TestSchemaKind::kEverything: {
      arrow::FieldVector all;
      for (auto k : {TestSchemaKind::kPrimitive, TestSchemaKind::kStrings,
                     TestSchemaKind::kNestedLists, TestSchemaKind::kStruct,
                     TestSchemaKind::kDictionary, TestSchemaKind::kNestedDictionary}) {
        for (auto& f : FieldsOf(k)) all.push_back(f);
      }
      return all;
    }
  }
  return {};
}

Result<arrow::ArrayVector> ColumnsOf(TestSchemaKind kind, int64_t first, int64_t rows,
                                     arrow::MemoryPool* pool) {
  arrow::ArrayVector columns;
  switch (kind) {
    case TestSchemaKind::kPrimitive: {
      ARROW_ASSIGN_OR_RAISE(auto i, Int64s(first, rows, true, pool));
      arrow::DoubleBuilder d(pool);
      arrow::BooleanBuilder b(pool);
      for (int64_t r = first; r < first + rows; ++r) {
        ARROW_RETURN_NOT_OK(d.Append(static_cast<double>(r) * 0.5 - 3));
        ARROW_RETURN_NOT_OK(b.Append(r % 3 == 0));
      }
      ARROW_ASSIGN_OR_RAISE(auto da, d.Finish());
      ARROW_ASSIGN_OR_RAISE(auto ba, b.Finish());
      return arrow::ArrayVector{i, da, ba};
    }
    case TestSchemaKind::kStrings: {
      ARROW_ASSIGN_OR_RAISE(auto s, Strings(first, rows, true, pool));
      arrow::LargeStringBuilder ls(pool);
      arrow::BinaryBuilder bin(pool);
      for (int64_t r = first; r < first + rows; ++r) {
        ARROW_RETURN_NOT_OK(ls.Append(std::string(static_cast<size_t>(r % 17), 'a' + r % 26)));
        std::string raw(static_cast<size_t>(r % 5), '\0');
        for (size_t j = 0; j < raw.size(); ++j) raw[j] = static_cast<char>((r + j) % 256);
        ARROW_RETURN_NOT_OK(bin.Append(raw));
      }
      ARROW_ASSIGN_OR_RAISE(auto lsa, ls.Finish());
      ARROW_ASSIGN_OR_RAISE(auto bina, bin.Finish());
      return arrow::ArrayVector{s, lsa, bina};
    }
    case TestSchemaKind::kNestedLists: {
      ARROW_ASSIGN_OR_RAISE(auto li, IntList(first, rows, pool));
      ARROW_ASSIGN_OR_RAISE(auto lls, StringListList(first, rows, pool));
      return arrow::ArrayVector{li, lls};
    }
    case TestSchemaKind::kStruct: {
      arrow::Int32Builder a(pool);
      for (int64_t r = first; r < first + rows; ++r) {
        ARROW_RETURN_NOT_OK(a.Append(static_cast<int32_t>(r % 100000)));
      }
      ARROW_ASSIGN_OR_RAISE(auto aa, a.Finish());
      ARROW_ASSIGN_OR_RAISE(auto ba, Strings(first, rows, true, pool));
      ARROW_ASSIGN_OR_RAISE(auto ca, IntList(first, rows, pool));
      auto type = FieldsOf(kind)[0]->type();
      ARROW_ASSIGN_OR_RAISE(auto st, arrow::StructArray::Make({aa, ba, ca}, type->fields()));
      return arrow::ArrayVector{st};
    }
    case TestSchemaKind::kDictionary: {
      ARROW_ASSIGN_OR_RAISE(auto k, Int64s(first, rows, false, pool));
      ARROW_ASSIGN_OR_RAISE(auto d, Dictionary<arrow::Int32Builder>(kDict32, first, rows, pool));
      return arrow::ArrayVector{k, d};
    }
    case TestSchemaKind::kNestedDictionary: {
      int64_t total = 0;
      ARROW_ASSIGN_OR_RAISE(auto offsets, ListOffsets(first, rows, &total, pool));
      // The values' dictionary depends on `first` too (not on the value start), so it changes.
      ARROW_ASSIGN_OR_RAISE(auto values, Dictionary<arrow::Int16Builder>(
                                             kDict16, ListValueStart(first), total, pool));
      ARROW_ASSIGN_OR_RAISE(auto l, arrow::ListArray::FromArrays(*offsets, *values, pool));
      return arrow::ArrayVector{l};
    }
    case TestSchemaKind::kEverything: {
      for (auto k : {TestSchemaKind::kPrimitive, TestSchemaKind::kStrings,
                     TestSchemaKind::kNestedLists, TestSchemaKind::kStruct,
                     TestSchemaKind::kDictionary, TestSchemaKind::kNestedDictionary}) {
        ARROW_ASSIGN_OR_RAISE(auto part, ColumnsOf(k, first, rows, pool));
        for (auto& c : part) columns.push_back(c);
      }
      return columns;
    }
  }
  return arrow::Status::Invalid("unknown schema kind");
}

}  // namespace

std::shared_ptr<arrow::Schema> TestSchema(TestSchemaKind kind) {
  return arrow::schema(FieldsOf(kind));
}

Result<std::shared_ptr<arrow::RecordBatch>> MakeTestBatch(TestSchemaKind kind, int64_t first_row,
                                                          int64_t rows, arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto columns, ColumnsOf(kind, first_row, rows, pool));
  return arrow::RecordBatch::Make(TestSchema(kind), rows, std::move(columns));
}

Result<std::shared_ptr<arrow::RecordBatch>> Densify(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  arrow::ArrayVector columns;
  arrow::FieldVector fields;
  for (int i = 0; i < batch->num_columns(); ++i) {
    auto field = batch->schema()->field(i);
    auto dense = DenseType(field->type());
    if (dense->Equals(*field->type())) {
      columns.push_back(batch->column(i));
    } else {
      ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(*batch->column(i), dense));
      columns.push_back(cast);
    }
    fields.push_back(field->WithType(dense));
  }
  return arrow::RecordBatch::Make(arrow::schema(fields), batch->num_rows(), std::move(columns));
}

Result<std::shared_ptr<arrow::RecordBatch>> ConcatenateDense(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> dense;
  for (const auto& b : batches) {
    ARROW_ASSIGN_OR_RAISE(auto d, Densify(b));
    dense.push_back(d);
  }
  if (dense.empty()) return arrow::Status::Invalid("nothing to concatenate");
  return arrow::ConcatenateRecordBatches(dense);
}

}  // namespace sabot::testing
