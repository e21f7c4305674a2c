#pragma once

#include <arrow/status.h>

namespace sabot {

// Registers Arrow's compute kernels (arrow::compute::Initialize). Every program and library
// entry point that may use Arrow compute calls this once at start; repeated calls are cheap and
// return the first call's status. Thread-safe.
arrow::Status InitializeArrow();

}  // namespace sabot
