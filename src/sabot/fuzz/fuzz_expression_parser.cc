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

#include <arrow/type.h>

#include "sabot/common/arrow_init.h"
#include "sabot/dataflow/expression_binder.h"
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
