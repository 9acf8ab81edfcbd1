// Chunk files (format v2, nvme/chunk_format.h) for the C++ drivers that read
// them through the NVMe index: write one and list it, or damage one on disk.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "nvme/chunk_format.h"
#include "store/chunk_id.h"
#include "store/nvme_index.h"

namespace weightcache::test {

// Writes chunk `id` (bytes [data, data + len), 4 KiB blocks) to `path` and lists it in `index` under `key`.
inline void WriteChunkFile(store::NvmeIndex& index, const std::string& path, const std::string& key,
                           const store::ChunkId& id, const uint8_t* data, uint64_t len) {
  std::vector<uint8_t> header;
  std::string err;
  CHECK(nvme::Encode(reinterpret_cast<const uint8_t*>(key.data()), static_cast<uint32_t>(key.size()),
                     id.object.data(), id.index, data, len, 4096, &header, &err));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(write(fd, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
  CHECK(write(fd, data, len) == static_cast<ssize_t>(len));
  close(fd);
  nvme::Header h;
  CHECK(nvme::Decode(header.data(), header.size(), &h) == nvme::DecodeError::kNone);
  store::NvmeEntry e;
  e.path = path;
  e.expect.data_offset = h.data_offset;
  e.expect.data_length = h.data_length;
  e.expect.data_crc = h.data_crc;
  e.label = key;
  CHECK(index.Put(id, std::move(e)));
}

// Flips a byte of the chunk file's data at `offset` (in the chunk).
inline void DamageChunkFile(const std::string& path, uint64_t offset) {
  int fd = open(path.c_str(), O_RDWR);
  uint8_t head[64];
  CHECK(pread(fd, head, sizeof head, 0) == 64);
  uint32_t data_offset = 0;
  CHECK(nvme::DataOffset(head, sizeof head, &data_offset) == nvme::DecodeError::kNone);
  uint8_t b = 0;
  CHECK(pread(fd, &b, 1, data_offset + offset) == 1);
  b ^= 0x5a;
  CHECK(pwrite(fd, &b, 1, data_offset + offset) == 1);
  close(fd);
}

}  // namespace weightcache::test
