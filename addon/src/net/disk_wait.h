// What both native doors' I/O threads do when a fast-path answer's NVMe
// reads complete (store/disk_reads.h): find the answer waiting on them and
// its connection, if both are still there.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <utility>

namespace weightcache::net {

// Takes the wait of read `token` out of `waits` (into `wait`) and returns its connection
// (`wait.conn` in `conns`), or null when the wait is unknown or its client went away meanwhile
// (a closed connection's fd is negative): the reads' pieces are then dropped with their view.
template <class Wait, class Conns>
auto TakeDiskWait(std::unordered_map<uint64_t, Wait>& waits, Conns& conns, uint64_t token, Wait& wait)
    -> decltype(conns.begin()->second.get()) {
  auto w = waits.find(token);
  if (w == waits.end()) return nullptr;
  wait = std::move(w->second);
  waits.erase(w);
  auto it = conns.find(wait.conn);
  if (it == conns.end() || it->second->fd < 0) return nullptr;
  return it->second.get();
}

}  // namespace weightcache::net
