// A parallel for-loop for the benchmarks' load generators.
#pragma once
#include <atomic>
#include <functional>
#include <thread>
#include <vector>

namespace bpfchain::bench {

// Runs `work(i)` for i in [0, count) on `threads` threads.
inline void parallel(int count, int threads, const std::function<void(int)>& work) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i; (i = next++) < count;)
        work(i);
    });
  for (auto& t : pool)
    t.join();
}

} // namespace bpfchain::bench
