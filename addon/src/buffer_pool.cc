#include "buffer_pool.h"

#include <cstdlib>

namespace weightcache {

BufferPool::~BufferPool() {
  for (auto& list : free_) {
    for (uint8_t* p : list) std::free(p);
  }
}

int BufferPool::ClassOf(size_t len) {
  int shift = kMinShift;
  while (shift < kMaxShift && (size_t{1} << shift) < len) shift++;
  return shift;
}

uint8_t* BufferPool::Acquire(size_t len) {
  if (len == 0 || len > (size_t{1} << kMaxShift)) return nullptr;
  int c = ClassOf(len);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_[c].empty()) {
      uint8_t* p = free_[c].back();
      free_[c].pop_back();
      pooled_ -= size_t{1} << c;
      return p;
    }
  }
  return static_cast<uint8_t*>(std::aligned_alloc(4096, size_t{1} << c));
}

void BufferPool::Release(uint8_t* p, size_t len) {
  if (!p) return;
  int c = ClassOf(len);
  size_t bytes = size_t{1} << c;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pooled_ + bytes <= max_pooled_) {
      free_[c].push_back(p);
      pooled_ += bytes;
      return;
    }
  }
  std::free(p);
}

size_t BufferPool::pooled_bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return pooled_;
}

}  // namespace weightcache
