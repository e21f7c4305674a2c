// libFuzzer target: the expression parser of job files and plans (dataflow/expression_parser.h).
//
// Properties beyond "no crash, no undefined behaviour, no stack overflow": what parses prints
// as canonical text that parses back to the same tree, and that text is a fixed point of
// printing; what binds against a fixed schema has a bound Arrow expression; every error is
// Invalid (parser) or KeyError/TypeError (binder) with a short printable ASCII message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <arrow/array.h>
#include <arrow/json/from_string.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>

#include "sabot/common/arrow_init.h"
#include "sabot/dataflow/expression_binder.h"
#include "sabot/dataflow/expression_evaluation.h"
#include "sabot/dataflow/expression_parser.h"
#include "sabot/dataflow/expression_printer.h"

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

void RequirePrintableAndShort(const arrow::Status& status) {
  Require(status.message().size() < 2048);
  for (char c : status.message()) {
    Require(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f);
  }
}

const std::shared_ptr<arrow::Schema>& Schema() {
  static const auto schema = arrow::schema({
      arrow::field("a", arrow::int64()), arrow::field("b", arrow::boolean()),
      arrow::field("s", arrow::utf8()), arrow::field("x", arrow::float64()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("d", arrow::date32()), arrow::field("weird name", arrow::int32())});
  return schema;
}

// Four rows of Schema(), with nulls, extremes and non-ASCII text.
std::shared_ptr<arrow::RecordBatch> Batch() {
  static const auto batch = [] {
    const auto& schema = Schema();
    const char* columns[] = {
        "[1, null, -9223372036854775808, 9223372036854775807]",
        "[true, null, false, true]",
        "[\"abc\", null, \"\", \"caf\u00e9 \"]",
        "[1.5, null, -0.0, 1e308]",
        "[0, null, -86400000000, 1704067200000000]",
        "[0, null, -1, 19723]",
        "[1, null, -2147483648, 2147483647]"};
    arrow::ArrayVector arrays;
    for (int i = 0; i < schema->num_fields(); ++i) {
      auto array = arrow::json::ArrayFromJSONString(schema->field(i)->type(),
                                                             columns[i]);
      Require(array.ok());
      arrays.push_back(*array);
    }
    return arrow::RecordBatch::Make(schema, 4, arrays);
  }();
  return batch;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Require(sabot::InitializeArrow().ok());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = sabot::ParseExpression(text);
  if (!parsed.ok()) {
    Require(parsed.status().IsInvalid());
    RequirePrintableAndShort(parsed.status());
  } else {
    const std::string canonical = sabot::FormatExpression(**parsed);
    auto again = sabot::ParseExpression(canonical);
    Require(again.ok());
    Require(sabot::ExprEquals(**again, **parsed));
    Require(sabot::FormatExpression(**again) == canonical);
    auto bound = sabot::BindExpression(*parsed, Schema());
    if (bound.ok()) {
      Require(bound->expression.IsBound());
      Require(bound->type != nullptr);
      auto values = sabot::EvaluateExpression(Batch(), *bound);
      if (values.ok()) {
        Require((*values)->length() == Batch()->num_rows());
        Require((*values)->type()->Equals(*bound->type));
      }
      if (bound->type->id() == arrow::Type::BOOL) {
        auto kept = sabot::EvaluateFilter(Batch(), *bound);
        if (kept.ok()) Require((*kept)->num_rows() <= Batch()->num_rows());
      }
    } else {
      Require(bound.status().IsKeyError() || bound.status().IsTypeError() ||
              bound.status().IsInvalid());
      RequirePrintableAndShort(bound.status());
    }
  }
  auto items = sabot::ParseProjectionList(text);
  if (items.ok()) {
    for (const auto& item : *items) {
      auto reparsed = sabot::ParseProjectionItem(sabot::FormatProjectionItem(item));
      Require(reparsed.ok());
      Require(sabot::ExprEquals(*reparsed->expr, *item.expr));
      Require(reparsed->alias == item.alias);
    }
  } else {
    RequirePrintableAndShort(items.status());
  }
  return 0;
}
