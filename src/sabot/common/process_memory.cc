#include "sabot/common/process_memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace sabot {

int64_t PeakResidentBytes() {
  std::FILE* status = std::fopen("/proc/self/status", "r");
  if (status == nullptr) return -1;
  char line[256];
  int64_t kib = -1;
  while (std::fgets(line, sizeof(line), status) != nullptr) {
    long long value = 0;
    if (std::strncmp(line, "VmHWM:", 6) == 0 && std::sscanf(line + 6, "%lld", &value) == 1) {
      kib = value;
      break;
    }
  }
  std::fclose(status);
  return kib < 0 ? -1 : kib * 1024;
}

void ReturnFreedMemoryPromptly(char** argv) {
  if (std::getenv("MIMALLOC_PURGE_DELAY") != nullptr &&
      std::getenv("MIMALLOC_ARENA_EAGER_COMMIT") != nullptr) {
    return;
  }
  // 0 = do not overwrite what the user set. Both are set now, so the program executed below
  // returns from here at once.
  setenv("MIMALLOC_PURGE_DELAY", "0", 0);
  setenv("MIMALLOC_ARENA_EAGER_COMMIT", "0", 0);
  execv("/proc/self/exe", argv);
}

}  // namespace sabot
