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
// operating system at once instead of keeping it for later: sets MIMALLOC_PURGE_DELAY=0 and
// MIMALLOC_ARENA_EAGER_COMMIT=0 in the environment, each unless already set (a user's choice
// wins). Without it, memory that threads free stays resident in their heaps and a process's
// RSS rises well above what it holds. Takes effect only when called before Arrow allocates
// anything (first thing in main); agent processes started later inherit it. Not thread-safe
// (it changes the environment).
void ReturnFreedMemoryPromptly();

}  // namespace sabot
