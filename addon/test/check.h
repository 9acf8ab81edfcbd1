// The checks every C++ test driver here uses (run by scripts/native-checks.mjs
// unit, plain and under ASan+UBSan/TSan): a failed CHECK is reported with its
// file, line and condition and counted, and the driver goes on, so one run
// shows every failure. A driver ends with `return CheckResult("name");`.
#pragma once
#include <atomic>
#include <cstdio>

// Atomic: drivers check from several threads at once.
inline std::atomic<int> g_checks{0};
inline std::atomic<int> g_failures{0};

#define CHECK(cond)                                                        \
  do {                                                                     \
    g_checks++;                                                            \
    if (!(cond)) {                                                         \
      g_failures++;                                                        \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                      \
  } while (0)

// Both sides printed on failure (integers).
#define CHECK_EQ(a, b)                                                                               \
  do {                                                                                               \
    g_checks++;                                                                                      \
    auto va = (a);                                                                                   \
    auto vb = (b);                                                                                   \
    if (!(va == vb)) {                                                                               \
      g_failures++;                                                                                  \
      std::fprintf(stderr, "FAIL %s:%d: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, #a, #b,      \
                   static_cast<long long>(va), static_cast<long long>(vb));                          \
    }                                                                                                \
  } while (0)

// Prints "name: N checks, M failures" and gives the driver's exit code (non-zero on a failure).
inline int CheckResult(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, g_checks.load(), g_failures.load());
  return g_failures == 0 ? 0 : 1;
}
