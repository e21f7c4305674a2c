#pragma once

// Clang thread-safety annotations. They document which mutex guards what; Clang checks them
// with -Wthread-safety, other compilers ignore them.
#if defined(__clang__)
#define SABOT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SABOT_THREAD_ANNOTATION(x)
#endif

#define SABOT_GUARDED_BY(x) SABOT_THREAD_ANNOTATION(guarded_by(x))
#define SABOT_PT_GUARDED_BY(x) SABOT_THREAD_ANNOTATION(pt_guarded_by(x))
#define SABOT_REQUIRES(...) SABOT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define SABOT_EXCLUDES(...) SABOT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
