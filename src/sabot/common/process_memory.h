#pragma once

#include <cstdint>

namespace sabot {

// The most resident memory (RSS) this process has had so far, in bytes: Linux's VmHWM from
// /proc/self/status. -1 where that cannot be read. It counts everything the process holds in
// RAM: the shuffle budget's buffers, what lies outside it (libraries' code, thread stacks, RPC
// buffers, the allocator's retained pages), so it is the figure to compare with the budget.
// Thread safety: safe to call from any thread.
int64_t PeakResidentBytes();

// Makes Arrow's default allocator (mimalloc in the pinned wheel) give freed memory back to the
// operating system at once instead of keeping it for later: MIMALLOC_PURGE_DELAY=0 and
// MIMALLOC_ARENA_EAGER_COMMIT=0, each unless already set (a user's choice wins). Without them,
// memory that threads free stays resident in their heaps and a process's RSS rises well above
// what it holds. mimalloc reads its options when libarrow is loaded, before main(), so setting
// them in a running process is too late: when either is unset, this sets them and executes the
// program again (`/proc/self/exe` with the same `argv`: same pid, same open descriptors), and
// returns only when both were already set or that exec failed (then only processes started
// later get them). Call it first in main, before any thread starts. Not thread-safe.
void ReturnFreedMemoryPromptly(char** argv);

}  // namespace sabot
