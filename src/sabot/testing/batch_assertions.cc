#include <sstream>

#include <arrow/array.h>
#include <arrow/scalar.h>
#include <arrow/type.h>

#include "sabot/testing/assertions.h"

namespace sabot::testing {

std::string DiffBatches(const arrow::RecordBatch& expected, const arrow::RecordBatch& actual) {
  std::ostringstream out;
  if (!expected.schema()->Equals(*actual.schema(), /*check_metadata=*/false)) {
    out << "schemas differ:\nexpected: " << expected.schema()->ToString()
        << "\nactual:   " << actual.schema()->ToString();
    return out.str();
  }
  if (expected.num_rows() != actual.num_rows()) {
    out << "row counts differ: expected " << expected.num_rows() << ", actual "
        << actual.num_rows();
    return out.str();
  }
  for (int c = 0; c < expected.num_columns(); ++c) {
    const auto& e = expected.column(c);
    const auto& a = actual.column(c);
    if (e->Equals(*a)) continue;
    for (int64_t row = 0; row < e->length(); ++row) {
      auto es = e->GetScalar(row).ValueOrDie();
      auto as = a->GetScalar(row).ValueOrDie();
      if (!es->Equals(*as)) {
        out << "column '" << expected.schema()->field(c)->name() << "' differs at row " << row
            << ": expected " << es->ToString() << ", actual " << as->ToString();
        return out.str();
      }
    }
    out << "column '" << expected.schema()->field(c)->name()
        << "' differs (in a way row values do not show):\nexpected: " << e->ToString()
        << "\nactual:   " << a->ToString();
    return out.str();
  }
  return "";
}

}  // namespace sabot::testing
