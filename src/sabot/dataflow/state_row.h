#pragma once

// A snapshot part of one row of named int64 values (checkpoint.h): how the sources put their
// position (files, row groups, batches, rows read) and the sinks their counters into a
// checkpoint. The part is an Arrow table of one row, one non-null int64 column per value, in
// the order given; reading it back checks that every expected column is there, an int64, with
// one row, so a snapshot from an incompatible version or of another operator fails with a
// message naming the part and the column instead of restoring garbage.
//
// Stateless functions; thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <arrow/result.h>
#include <arrow/table.h>
#include <arrow/type.h>

#include "sabot/dataflow/checkpoint.h"
#include "sabot/dataflow/watermark_generator.h"

namespace sabot {

using StateRowValues = std::vector<std::pair<std::string, int64_t>>;

// The table of one row holding `values`.
inline arrow::Result<std::shared_ptr<arrow::Table>> MakeStateRow(const StateRowValues& values) {
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (const auto& [name, value] : values) {
    arrow::Int64Builder builder;
    ARROW_RETURN_NOT_OK(builder.Append(value));
    ARROW_ASSIGN_OR_RAISE(auto column, builder.Finish());
    fields.push_back(arrow::field(name, arrow::int64(), /*nullable=*/false));
    columns.push_back(std::move(column));
  }
  return arrow::Table::Make(arrow::schema(std::move(fields)), std::move(columns), 1);
}

// The values of the columns `names` of the one-row part `part` (for messages: what restores it,
// e.g. "generator source task 2"). Invalid when the part is missing, has another row count, or
// lacks one of the columns / has it with another type or a null.
inline arrow::Result<std::map<std::string, int64_t>> ReadStateRow(
    const std::shared_ptr<arrow::Table>& table, const std::string& part,
    const std::vector<std::string>& names, const std::string& what) {
  if (table == nullptr) {
    return arrow::Status::Invalid(what, ": the snapshot has no part '", part, "'");
  }
  if (table->num_rows() != 1) {
    return arrow::Status::Invalid(what, ": snapshot part '", part, "' has ", table->num_rows(),
                                  " rows, expected 1");
  }
  std::map<std::string, int64_t> out;
  for (const std::string& name : names) {
    std::shared_ptr<arrow::ChunkedArray> column = table->GetColumnByName(name);
    if (column == nullptr || !column->type()->Equals(*arrow::int64())) {
      return arrow::Status::Invalid(what, ": snapshot part '", part, "' has no int64 column '",
                                    name, "'");
    }
    int64_t value = 0;
    bool found = false;
    for (const auto& chunk : column->chunks()) {
      if (chunk->length() == 0) continue;
      if (chunk->IsNull(0)) break;
      value = static_cast<const arrow::Int64Array&>(*chunk).Value(0);
      found = true;
      break;
    }
    if (!found) {
      return arrow::Status::Invalid(what, ": snapshot part '", part, "' column '", name,
                                    "' is null");
    }
    out.emplace(name, value);
  }
  return out;
}

// A source task's watermark state (SourceWatermarks::State) as values of its position row:
// "max_event_time", "watermark", "pending_watermark".
inline std::vector<std::string> WatermarkStateNames() {
  return {"max_event_time", "watermark", "pending_watermark"};
}
inline void AppendWatermarkState(const SourceWatermarks::State& state, StateRowValues* values) {
  values->emplace_back("max_event_time", state.max_event_time);
  values->emplace_back("watermark", state.watermark);
  values->emplace_back("pending_watermark", state.pending);
}
inline SourceWatermarks::State WatermarkStateOf(const std::map<std::string, int64_t>& values) {
  SourceWatermarks::State state;
  state.max_event_time = values.at("max_event_time");
  state.watermark = values.at("watermark");
  state.pending = values.at("pending_watermark");
  return state;
}

}  // namespace sabot
