#include "sabot/partition/range_partitioner.h"

#include <cmath>
#include <cstring>
#include <string_view>

#include <arrow/array.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/decimal.h>

namespace sabot {

namespace {

// Typed read access to the values of one array (logical index i, offset applied) and the strict
// weak order RANGE uses for them.
template <typename T>
struct NumericAccess {
  explicit NumericAccess(const arrow::ArrayData& a) : values(a.GetValues<T>(1)) {}
  T operator()(int64_t i) const { return values[i]; }
  static bool Less(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      // NaN after everything, NaN == NaN; -0.0 == 0.0 falls out of <.
      if (std::isnan(a)) return false;
      if (std::isnan(b)) return true;
    }
    return a < b;
  }
  const T* values;
};

struct BoolAccess {
  explicit BoolAccess(const arrow::ArrayData& a) : bits(a.buffers[1]->data()), offset(a.offset) {}
  bool operator()(int64_t i) const { return arrow::bit_util::GetBit(bits, offset + i); }
  static bool Less(bool a, bool b) { return !a && b; }
  const uint8_t* bits;
  int64_t offset;
};

template <typename OffsetType>
struct BinaryAccess {
  explicit BinaryAccess(const arrow::ArrayData& a)
      : offsets(a.GetValues<OffsetType>(1)),
        data(a.buffers[2] ? reinterpret_cast<const char*>(a.buffers[2]->data()) : "") {}
  std::string_view operator()(int64_t i) const {
    return std::string_view(data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]));
  }
  // std::string_view compares bytes as unsigned char, shorter prefix first.
  static bool Less(std::string_view a, std::string_view b) { return a < b; }
  const OffsetType* offsets;
  const char* data;
};

struct FixedBytesAccess {
  explicit FixedBytesAccess(const arrow::ArrayData& a)
      : width(static_cast<const arrow::FixedSizeBinaryType&>(*a.type).byte_width()),
        data(reinterpret_cast<const char*>(a.buffers[1]->data()) + a.offset * width) {}
  std::string_view operator()(int64_t i) const {
    return std::string_view(data + i * width, static_cast<size_t>(width));
  }
  static bool Less(std::string_view a, std::string_view b) { return a < b; }
  int64_t width;
  const char* data;
};

struct Decimal128Access {
  explicit Decimal128Access(const arrow::ArrayData& a)
      : data(a.buffers[1]->data() + a.offset * 16) {}
  arrow::Decimal128 operator()(int64_t i) const { return arrow::Decimal128(data + i * 16); }
  static bool Less(const arrow::Decimal128& a, const arrow::Decimal128& b) { return a < b; }
  const uint8_t* data;
};

// Calls visitor.template operator()<Access>() with the accessor type for `type`; TypeError for
// types RANGE cannot order.
template <typename Visitor>
arrow::Status VisitRangeType(const arrow::DataType& type, Visitor&& visitor) {
  switch (type.id()) {
    case arrow::Type::INT8:
      return visitor.template operator()<NumericAccess<int8_t>>();
    case arrow::Type::INT16:
      return visitor.template operator()<NumericAccess<int16_t>>();
    case arrow::Type::INT32:
    case arrow::Type::DATE32:
    case arrow::Type::TIME32:
      return visitor.template operator()<NumericAccess<int32_t>>();
    case arrow::Type::INT64:
    case arrow::Type::DATE64:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
      return visitor.template operator()<NumericAccess<int64_t>>();
    case arrow::Type::UINT8:
      return visitor.template operator()<NumericAccess<uint8_t>>();
    case arrow::Type::UINT16:
      return visitor.template operator()<NumericAccess<uint16_t>>();
    case arrow::Type::UINT32:
      return visitor.template operator()<NumericAccess<uint32_t>>();
    case arrow::Type::UINT64:
      return visitor.template operator()<NumericAccess<uint64_t>>();
    case arrow::Type::FLOAT:
      return visitor.template operator()<NumericAccess<float>>();
    case arrow::Type::DOUBLE:
      return visitor.template operator()<NumericAccess<double>>();
    case arrow::Type::BOOL:
      return visitor.template operator()<BoolAccess>();
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
      return visitor.template operator()<BinaryAccess<int32_t>>();
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return visitor.template operator()<BinaryAccess<int64_t>>();
    case arrow::Type::FIXED_SIZE_BINARY:
      return visitor.template operator()<FixedBytesAccess>();
    case arrow::Type::DECIMAL128:
      return visitor.template operator()<Decimal128Access>();
    default:
      return arrow::Status::TypeError("type ", type.ToString(), " cannot be range-partitioned");
  }
}

// One key column's step of the search. On entry, boundaries [low[i], high[i]) are those equal to
// row i's key on the columns before this one (all before low[i] are smaller, all from high[i]
// on are greater). Rows with low == high are decided. On the last column, low[i] becomes the
// number of boundaries <= the key: the partition.
template <typename Access>
void NarrowByColumn(const arrow::ArrayData& keys, const arrow::ArrayData& bounds, bool last,
                    bool nulls_at_end, int32_t* low, int32_t* high) {
  const Access key(keys);
  const Access bound(bounds);
  const int64_t n = keys.length;
  const uint8_t* validity =
      keys.GetNullCount() != 0 && keys.buffers[0] ? keys.buffers[0]->data() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    int32_t lo = low[i];
    int32_t hi = high[i];
    if (lo == hi) continue;
    if (validity != nullptr && !arrow::bit_util::GetBit(validity, keys.offset + i)) {
      // Boundaries have no nulls: a null is after (or before) all of them.
      if (nulls_at_end) {
        low[i] = hi;
      } else {
        high[i] = lo;
      }
      continue;
    }
    const auto k = key(i);
    // lower bound: first boundary >= k.
    int32_t first = lo;
    int32_t count = hi - lo;
    while (count > 0) {
      const int32_t step = count / 2;
      if (Access::Less(bound(first + step), k)) {
        first += step + 1;
        count -= step + 1;
      } else {
        count = step;
      }
    }
    const int32_t lower = first;
    // upper bound: first boundary > k.
    count = hi - lower;
    while (count > 0) {
      const int32_t step = count / 2;
      if (!Access::Less(k, bound(first + step))) {
        first += step + 1;
        count -= step + 1;
      } else {
        count = step;
      }
    }
    const int32_t upper = first;
    if (last) {
      low[i] = upper;
      high[i] = upper;
    } else {
      low[i] = lower;
      high[i] = upper;
    }
  }
}

}  // namespace

bool IsRangeKeyType(const arrow::DataType& type) {
  return VisitRangeType(type, []<typename Access>() { return arrow::Status::OK(); }).ok();
}

arrow::Status ValidateRangeBoundaries(const arrow::RecordBatch& boundaries,
                                      const std::vector<std::string>& key_columns) {
  const arrow::Schema& schema = *boundaries.schema();
  if (schema.num_fields() != static_cast<int>(key_columns.size())) {
    return arrow::Status::Invalid("range boundaries have ", schema.num_fields(),
                                  " columns but there are ", key_columns.size(),
                                  " key columns; the boundaries need exactly the key columns");
  }
  for (int c = 0; c < schema.num_fields(); ++c) {
    const auto& field = schema.field(c);
    if (field->name() != key_columns[c]) {
      return arrow::Status::Invalid("range boundary column ", c, " is named '", field->name(),
                                    "' but key column ", c, " is '", key_columns[c], "'");
    }
    if (!IsRangeKeyType(*field->type())) {
      return arrow::Status::TypeError(
          "range boundary column '", field->name(), "' has type ", field->type()->ToString(),
          ", which RANGE partitioning cannot order (supported: integers, floats, bool, string, "
          "large_string, binary, large_binary, fixed_size_binary, date32/64, time32/64, "
          "timestamp, decimal128)");
    }
    const int64_t nulls = boundaries.column(c)->null_count();
    if (nulls != 0) {
      return arrow::Status::Invalid("range boundary column '", field->name(), "' has ", nulls,
                                    " null(s); boundaries must not be null");
    }
  }
  // Sorted: row r + 1 must not be less than row r. Each pair is checked with the search below,
  // using row r as the only boundary: row r + 1 is less than it exactly when its partition
  // against that boundary is 0.
  const int64_t rows = boundaries.num_rows();
  for (int64_t r = 0; r + 1 < rows; ++r) {
    int32_t lo = 0;
    int32_t hi = 1;
    for (int c = 0; c < schema.num_fields(); ++c) {
      const auto& column = *boundaries.column_data(c);
      const bool last = c + 1 == schema.num_fields();
      const std::shared_ptr<arrow::ArrayData> key = column.Slice(r + 1, 1);
      const std::shared_ptr<arrow::ArrayData> bound = column.Slice(r, 1);
      ARROW_RETURN_NOT_OK(VisitRangeType(*column.type, [&]<typename Access>() {
        // A key equal to the bound ends with lo == 1 (it is >= the bound); a smaller key with 0.
        // Ties on a non-last column keep [0, 1) and move on to the next column.
        NarrowByColumn<Access>(*key, *bound, last, /*nulls_at_end=*/true, &lo, &hi);
        return arrow::Status::OK();
      }));
      if (lo == hi) break;
    }
    if (lo == 0) {
      return arrow::Status::Invalid("range boundaries are not sorted: row ", r + 1,
                                    " is less than row ", r, " (",
                                    boundaries.Slice(r, 2)->ToString(), ")");
    }
  }
  return arrow::Status::OK();
}

arrow::Result<std::unique_ptr<RangePartitioner>> RangePartitioner::Make(
    std::shared_ptr<const PartitionSpec> spec, std::shared_ptr<arrow::Schema> input_schema,
    TaskIndex writer_task, arrow::MemoryPool* pool) {
  if (spec->edge_type() != EdgeType::kRange || spec->boundaries() == nullptr) {
    return arrow::Status::Invalid("RangePartitioner needs a RANGE spec, got ", spec->ToString());
  }
  const arrow::RecordBatch& boundaries = *spec->boundaries();
  std::unique_ptr<RangePartitioner> partitioner(
      new RangePartitioner(spec, input_schema, writer_task));
  for (size_t c = 0; c < spec->key_columns().size(); ++c) {
    const std::string& name = spec->key_columns()[c];
    const std::vector<int> matches = input_schema->GetAllFieldIndices(name);
    if (matches.empty()) {
      return arrow::Status::Invalid("key column '", name, "' is not in the input schema (",
                                    input_schema->ToString(/*show_metadata=*/false), ")");
    }
    if (matches.size() > 1) {
      return arrow::Status::Invalid("key column '", name, "' is ambiguous: the input schema has ",
                                    matches.size(), " fields of that name");
    }
    const auto& type = input_schema->field(matches[0])->type();
    if (!IsRangeKeyType(*type)) {
      return arrow::Status::TypeError("key column '", name, "' has type ", type->ToString(),
                                      ", which RANGE partitioning cannot order");
    }
    const auto& bound_type = boundaries.schema()->field(static_cast<int>(c))->type();
    if (!type->Equals(*bound_type)) {
      return arrow::Status::TypeError("key column '", name, "' has type ", type->ToString(),
                                      " but its range boundaries have type ",
                                      bound_type->ToString());
    }
    partitioner->key_indices_.push_back(matches[0]);
  }
  ARROW_ASSIGN_OR_RAISE(partitioner->scatter_, RowScatter::Make(spec->num_partitions(), pool));
  return partitioner;
}

arrow::Status RangePartitioner::ComputePartitionIds(const arrow::RecordBatch& batch,
                                                    PartitionId* ids) {
  const int64_t n = batch.num_rows();
  const arrow::RecordBatch& boundaries = *spec().boundaries();
  const int32_t num_bounds = static_cast<int32_t>(boundaries.num_rows());
  high_.assign(static_cast<size_t>(n), num_bounds);
  std::fill(ids, ids + n, 0);
  const bool nulls_at_end = spec().null_placement() == arrow::compute::NullPlacement::AtEnd;
  const size_t num_keys = key_indices_.size();
  for (size_t c = 0; c < num_keys; ++c) {
    const arrow::ArrayData& keys = *batch.column_data(key_indices_[c]);
    const arrow::ArrayData& bounds = *boundaries.column_data(static_cast<int>(c));
    const bool last = c + 1 == num_keys;
    ARROW_RETURN_NOT_OK(VisitRangeType(*keys.type, [&]<typename Access>() {
      NarrowByColumn<Access>(keys, bounds, last, nulls_at_end, ids, high_.data());
      return arrow::Status::OK();
    }));
  }
  return arrow::Status::OK();
}

arrow::Result<PartitionedBatch> RangePartitioner::PartitionChecked(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  ids_.resize(static_cast<size_t>(batch->num_rows()));
  ARROW_RETURN_NOT_OK(ComputePartitionIds(*batch, ids_.data()));
  PartitionedBatch out;
  ARROW_ASSIGN_OR_RAISE(out.batches, scatter_->Scatter(batch, ids_.data()));
  return out;
}

}  // namespace sabot
