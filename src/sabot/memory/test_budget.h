#pragma once

#include <cstdint>

#include "sabot/memory/spill_manager.h"

namespace sabot::testing {

// The harsh test configuration: when the environment variable SABOT_TEST_TINY_BUDGET is set
// (to anything but "" or "0"), tests that use these helpers run with a tiny memory budget and
// watermarks of zero, so every block a BlockStore receives is spilled and read back from disk.
// CMake registers each such test binary a second time as "<name>_tiny_budget" with the
// variable set (sabot_add_tiny_budget_test in src/sabot/memory/CMakeLists.txt).
bool TinyBudgetRequested();

// `normal_bytes`, or the tiny budget (4 MiB) under SABOT_TEST_TINY_BUDGET.
int64_t TestBudgetBytes(int64_t normal_bytes);

// `options` with, under SABOT_TEST_TINY_BUDGET, both watermarks set to zero.
SpillOptions TestSpillOptions(SpillOptions options = {});

}  // namespace sabot::testing
