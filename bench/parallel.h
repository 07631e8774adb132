// A parallel for-loop for the benchmarks' load generators.
#pragma once
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bpfchain::bench {

// Runs `work(i)` for i in [0, count) on `threads` threads. The first exception `work` throws
// (a CommandLine::die) stops the loop and is thrown again here once every thread has ended.
inline void parallel(int count, int threads, const std::function<void(int)>& work) {
  std::atomic<int> next{0};
  std::mutex mu;
  std::exception_ptr failure;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      try {
        for (int i; (i = next++) < count;)
          work(i);
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failure)
          failure = std::current_exception();
        next = count;
      }
    });
  for (auto& t : pool)
    t.join();
  if (failure)
    std::rethrow_exception(failure);
}

} // namespace bpfchain::bench
