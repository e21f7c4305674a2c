#include "sabot/common/arrow_init.h"

#include <mutex>

#include <arrow/compute/initialize.h>

namespace sabot {

arrow::Status InitializeArrow() {
  static std::once_flag once;
  static arrow::Status status;
  std::call_once(once, [] { status = arrow::compute::Initialize(); });
  return status;
}

}  // namespace sabot
