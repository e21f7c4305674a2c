#include "sabot/memory/test_budget.h"

#include <cstdlib>
#include <cstring>

namespace sabot::testing {

bool TinyBudgetRequested() {
  const char* value = std::getenv("SABOT_TEST_TINY_BUDGET");
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

int64_t TestBudgetBytes(int64_t normal_bytes) {
  return TinyBudgetRequested() ? int64_t{4} << 20 : normal_bytes;
}

SpillOptions TestSpillOptions(SpillOptions options) {
  if (TinyBudgetRequested()) {
    options.high_watermark = 0;
    options.low_watermark = 0;
  }
  return options;
}

}  // namespace sabot::testing
