#pragma once

#include <cstdint>

namespace sabot {

// The most resident memory (RSS) this process has had so far, in bytes: Linux's VmHWM from
// /proc/self/status. -1 where that cannot be read. It counts everything the process holds in
// RAM: the shuffle budget's buffers, what lies outside it (libraries' code, thread stacks, RPC
// buffers, the allocator's retained pages), so it is the figure to compare with the budget.
// Thread safety: safe to call from any thread.
int64_t PeakResidentBytes();

}  // namespace sabot
