#include <gtest/gtest.h>

#include "sabot/common/arrow_init.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  arrow::Status status = sabot::InitializeArrow();
  if (!status.ok()) {
    fprintf(stderr, "cannot initialize Arrow: %s\n", status.ToString().c_str());
    return 1;
  }
  return RUN_ALL_TESTS();
}
