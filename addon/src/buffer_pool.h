// Receive buffers: page-aligned (O_DIRECT- and DMA-friendly, and what an RDMA
// backend would register), in power-of-two size classes, reused so a 4 MiB
// chunk read does not cost a fresh mmap + page faults every time. Allocated on
// the I/O thread, returned from JS Buffer finalizers on the JS thread: a mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace weightcache {

class BufferPool {
 public:
  explicit BufferPool(size_t max_pooled_bytes) : max_pooled_(max_pooled_bytes) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  uint8_t* Acquire(size_t len);
  void Release(uint8_t* p, size_t len);
  size_t pooled_bytes();

 private:
  static constexpr int kMinShift = 12;  // 4 KiB
  static constexpr int kMaxShift = 31;
  static int ClassOf(size_t len);

  std::mutex mu_;
  size_t max_pooled_;
  size_t pooled_ = 0;
  std::vector<uint8_t*> free_[kMaxShift + 1];
};

}  // namespace weightcache
