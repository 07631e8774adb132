// Summaries of benchmark samples.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace bpfchain::bench {

// The sample at rank round(q * (n - 1)) of the sorted samples (no interpolation); 0 for none.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

// The median of sorted samples: the middle one, or the mean of the two middle ones.
inline double medianOfSorted(const std::vector<double>& sorted) {
  size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

} // namespace bpfchain::bench
