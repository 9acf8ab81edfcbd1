#include "store/arena.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weightcache::store {
namespace {

int MemfdCreate(const char* name) {
#ifdef SYS_memfd_create
  return static_cast<int>(syscall(SYS_memfd_create, name, MFD_CLOEXEC));
#else
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace

std::unique_ptr<Arena> Arena::Create(uint64_t reserve_bytes, std::string* error) {
  uint64_t size = ChargeOf(reserve_bytes);
  int fd = MemfdCreate("weightcache-dram");
  if (fd < 0) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return nullptr;
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    *error = std::string("ftruncate of the DRAM arena to ") + std::to_string(size) + " bytes: " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) {
    *error = std::string("mmap of the DRAM arena (") + std::to_string(size) + " bytes): " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  // Model weights have no place in a core dump (and would make it as large as the cache).
  madvise(p, size, MADV_DONTDUMP);
  return std::unique_ptr<Arena>(new Arena(fd, static_cast<uint8_t*>(p), size));
}

Arena::Arena(int fd, uint8_t* base, uint64_t reserved) : fd_(fd), base_(base), reserved_(reserved) {
  AddFree(0, reserved);
}

Arena::~Arena() {
  munmap(base_, reserved_);
  close(fd_);
}

uint64_t Arena::Allocate(uint64_t charge, bool* warm) {
  std::lock_guard<std::mutex> lock(mu_);
  auto w = warm_.find(charge);
  if (w != warm_.end() && !w->second.empty()) {
    uint64_t off = w->second.back();
    w->second.pop_back();
    warm_bytes_ -= charge;
    if (warm) *warm = true;
    return off;
  }
  if (warm) *warm = false;
  return TakeFree(charge);
}

uint64_t Arena::TakeFree(uint64_t charge) {
  auto it = free_by_size_.lower_bound({charge, 0});
  if (it == free_by_size_.end()) return kNone;
  auto [len, off] = *it;
  free_by_size_.erase(it);
  free_by_offset_.erase(off);
  free_bytes_ -= len;
  if (len > charge) {
    free_by_offset_.emplace(off + charge, len - charge);
    free_by_size_.emplace(len - charge, off + charge);
    free_bytes_ += len - charge;
  }
  return off;
}

void Arena::Free(uint64_t offset, uint64_t charge, uint64_t warm_limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (warm_bytes_ + charge <= warm_limit) {
    warm_[charge].push_back(offset);
    warm_bytes_ += charge;
    return;
  }
  Release(offset, charge);
}

void Arena::TrimWarm(uint64_t warm_limit) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = warm_.begin(); it != warm_.end() && warm_bytes_ > warm_limit;) {
    auto& offs = it->second;
    while (!offs.empty() && warm_bytes_ > warm_limit) {
      Release(offs.back(), it->first);
      warm_bytes_ -= it->first;
      offs.pop_back();
    }
    it = offs.empty() ? warm_.erase(it) : std::next(it);
  }
}

uint64_t Arena::AllocateCold(uint64_t charge) {
  std::lock_guard<std::mutex> lock(mu_);
  return TakeFree(charge);
}

void Arena::AddWarm(uint64_t offset, uint64_t charge) {
  std::lock_guard<std::mutex> lock(mu_);
  warm_[charge].push_back(offset);
  warm_bytes_ += charge;
}

size_t Arena::WarmCount(uint64_t charge) {
  std::lock_guard<std::mutex> lock(mu_);
  auto w = warm_.find(charge);
  return w == warm_.end() ? 0 : w->second.size();
}

void Arena::Populate(uint8_t* p, uint64_t len) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (madvise(p, len, MADV_POPULATE_WRITE) == 0) return;
  for (uint64_t i = 0; i < len; i += kPage) p[i] = 0;  // older kernels: fault each page in here
}

void Arena::Release(uint64_t offset, uint64_t charge) {
  // Give the pages back: the budget promises resident memory, not address space.
  if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                static_cast<off_t>(charge)) != 0 &&
      madvise(base_ + offset, charge, MADV_REMOVE) != 0) {
    punch_failures_++;
  }
  AddFree(offset, charge);
}

void Arena::AddFree(uint64_t offset, uint64_t len) {
  auto next = free_by_offset_.lower_bound(offset);
  if (next != free_by_offset_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      free_by_size_.erase({prev->second, prev->first});
      offset = prev->first;
      len += prev->second;
      free_bytes_ -= prev->second;
      free_by_offset_.erase(prev);
    }
  }
  if (next != free_by_offset_.end() && offset + len == next->first) {
    free_by_size_.erase({next->second, next->first});
    len += next->second;
    free_bytes_ -= next->second;
    free_by_offset_.erase(next);
  }
  free_by_offset_.emplace(offset, len);
  free_by_size_.emplace(len, offset);
  free_bytes_ += len;
}

Arena::Stats Arena::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  s.reserved = reserved_;
  s.warm_bytes = warm_bytes_;
  s.free_bytes = free_bytes_;
  s.largest_free = free_by_size_.empty() ? 0 : free_by_size_.rbegin()->first;
  s.punch_failures = punch_failures_;
  return s;
}

}  // namespace weightcache::store
