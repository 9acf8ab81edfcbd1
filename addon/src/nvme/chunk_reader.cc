#include "nvme/chunk_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crc32c.h"

namespace weightcache::nvme {
namespace {

// Enough for the header of a 4 MiB chunk in 4 KiB blocks (64 + key + 4 KiB of
// block CRCs): the guess read when the caller does not know the data offset.
constexpr uint32_t kHeaderGuess = 8192;

uint64_t AlignUp(uint64_t n) { return (n + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

}  // namespace

AlignedBuffer::AlignedBuffer(std::shared_ptr<BufferPool> pool, size_t size) : pool_(std::move(pool)) {
  size_t n = static_cast<size_t>(AlignUp(size == 0 ? 1 : size));
  p_ = pool_->Acquire(n);
  if (p_) size_ = n;
}

void AlignedBuffer::Reset() {
  if (p_) pool_->Release(p_, size_);
  p_ = nullptr;
  size_ = 0;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    Reset();
    pool_ = std::move(o.pool_);
    p_ = o.p_;
    size_ = o.size_;
    o.p_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

OpenChunk::~OpenChunk() {
  if (fd >= 0) close(fd);
}

std::shared_ptr<const OpenChunk> OpenChunks::Find(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void OpenChunks::Insert(const std::string& path, std::shared_ptr<const OpenChunk> chunk) {
  std::shared_ptr<const OpenChunk> dropped;  // closed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_path_.find(path);
  if (it != by_path_.end()) {
    dropped = std::move(it->second->second);
    it->second->second = std::move(chunk);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(path, std::move(chunk));
  by_path_[path] = lru_.begin();
  if (lru_.size() > capacity_) {
    dropped = std::move(lru_.back().second);
    by_path_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void OpenChunks::Erase(const std::string& path, const OpenChunk* only) {
  std::shared_ptr<const OpenChunk> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end() || (only && it->second->second.get() != only)) return;
  dropped = std::move(it->second->second);
  lru_.erase(it->second);
  by_path_.erase(it);
}

void OpenChunks::Clear() {
  std::list<Entry> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  by_path_.clear();
  dropped.swap(lru_);
}

size_t OpenChunks::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

void ChunkReader::Read(ChunkRead* r) {
  r->reader = this;
  if (r->offset > r->expect.data_length || r->length > r->expect.data_length - r->offset) {
    Finish(r, ReadStatus::kIoError, ERANGE,
           "bytes " + std::to_string(r->offset) + "+" + std::to_string(r->length) + " are past the end of the " +
               std::to_string(r->expect.data_length) + "-byte chunk");
    return;
  }
  std::shared_ptr<const OpenChunk> c = files_.Find(r->path);
  if (c) {
    if (Matches(*c, *r)) {
      r->chunk = std::move(c);
      ReadData(r);
      return;
    }
    // Opened before the file under this path was replaced: look again.
    files_.Erase(r->path, c.get());
  }
  auto [it, first] = opening_.try_emplace(r->path);
  if (!first) {
    it->second.push_back(r);
    return;
  }
  r->leading = true;
  Open(r);
}

bool ChunkReader::Matches(const OpenChunk& c, const ChunkRead& r) {
  const Header& h = c.h;
  return h.data_length == r.expect.data_length && h.data_crc == r.expect.data_crc &&
         (r.expect.data_offset == 0 || h.data_offset == r.expect.data_offset) && NamesChunk(h, r);
}

bool ChunkReader::NamesChunk(const Header& h, const ChunkRead& r) {
  if (r.expect.by_id)
    return h.index == r.expect.index && std::memcmp(h.object_id, r.expect.object_id, kObjectIdBytes) == 0;
  return h.key_length == r.key.size() && std::memcmp(h.key, r.key.data(), h.key_length) == 0;
}

void ChunkReader::ReleaseWaiters(ChunkRead* leader) {
  leader->leading = false;
  auto it = opening_.find(leader->path);
  if (it == opening_.end()) return;
  std::vector<ChunkRead*> waiting = std::move(it->second);
  opening_.erase(it);
  for (ChunkRead* w : waiting) {
    if (leader->status != ReadStatus::kOk && !leader->chunk) {
      Finish(w, leader->status, leader->err, leader->reason);
    } else if (leader->chunk && Matches(*leader->chunk, *w)) {
      w->chunk = leader->chunk;
      ReadData(w);
    } else {
      Open(w);  // expects another file than the one found: on its own
    }
  }
}

void ChunkReader::Open(ChunkRead* r) {
  r->op = io::Op{};
  r->op.kind = io::Op::kOpen;
  r->op.path = r->path.c_str();
  r->op.flags = O_RDONLY | O_NOFOLLOW | (direct_ ? O_DIRECT : 0);
  r->op.done = OnOpened;
  r->op.user = r;
  loop_.Submit(&r->op);
}

void ChunkReader::OnOpened(io::Op* op) {
  auto* r = static_cast<ChunkRead*>(op->user);
  ChunkReader* self = r->reader;
  if (op->result == -EINVAL && self->direct_) {
    // This filesystem does not do O_DIRECT: the page cache it is.
    self->direct_ = false;
    self->Open(r);
    return;
  }
  if (op->result < 0) {
    int err = -op->result;
    self->Finish(r, err == ENOENT ? ReadStatus::kMissing : err == ECANCELED ? ReadStatus::kCancelled
                                                                            : ReadStatus::kIoError,
                 err, std::string("cannot open chunk file: ") + std::strerror(err));
    return;
  }
  r->fd = op->result;
  struct stat st{};
  if (fstat(r->fd, &st) < 0) {
    int err = errno;
    self->Finish(r, ReadStatus::kIoError, err, std::string("cannot stat chunk file: ") + std::strerror(err));
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    self->Finish(r, ReadStatus::kCorrupt, 0, "not a regular file");
    return;
  }
  r->file_size = st.st_size;
  self->stats_.header_reads++;
  self->ReadHeader(r, r->expect.data_offset ? r->expect.data_offset : kHeaderGuess);
}

void ChunkReader::ReadHeader(ChunkRead* r, uint32_t bytes) {
  r->header = AlignedBuffer(pool_, bytes);
  if (!r->header.data()) {
    Finish(r, ReadStatus::kIoError, ENOMEM, "out of memory for a chunk header");
    return;
  }
  r->want = bytes;
  r->got = 0;
  r->op = io::Op{};
  r->op.kind = io::Op::kRead;
  r->op.fd = r->fd;
  r->op.buf = r->header.data();
  r->op.len = bytes;
  r->op.offset = 0;
  r->op.done = OnHeader;
  r->op.user = r;
  loop_.Submit(&r->op);
}

void ChunkReader::OnHeader(io::Op* op) {
  auto* r = static_cast<ChunkRead*>(op->user);
  ChunkReader* self = r->reader;
  if (op->result < 0) {
    int err = -op->result;
    self->Finish(r, err == ECANCELED ? ReadStatus::kCancelled : ReadStatus::kIoError, err,
                 std::string("cannot read chunk header: ") + std::strerror(err));
    return;
  }
  self->stats_.bytes_read += static_cast<uint64_t>(op->result);
  r->got += static_cast<uint64_t>(op->result);
  if (op->result > 0 && r->got < r->want) {  // a short read that is not the end of the file
    op->buf = r->header.data() + r->got;
    op->len = static_cast<uint32_t>(r->want - r->got);
    op->offset = r->got;
    self->loop_.Submit(op);
    return;
  }
  uint32_t data_offset = 0;
  DecodeError e = DataOffset(r->header.data(), r->got, &data_offset);
  if (e == DecodeError::kNone && data_offset > r->got) {
    if (r->got < r->want) e = DecodeError::kTruncated;  // the file ended inside its header
    else {
      self->ReadHeader(r, data_offset);  // a longer header than guessed (big key or chunk)
      return;
    }
  }
  Header h;
  if (e == DecodeError::kNone) e = Decode(r->header.data(), r->got, &h);
  if (e != DecodeError::kNone) {
    self->Finish(r, ReadStatus::kCorrupt, 0, std::string("invalid header: ") + DecodeErrorName(e));
    return;
  }
  if (!NamesChunk(h, *r)) {
    self->Finish(r, ReadStatus::kCorrupt, 0, "header names another chunk");
    return;
  }
  if (h.data_length != r->expect.data_length || h.data_crc != r->expect.data_crc ||
      (r->expect.data_offset != 0 && h.data_offset != r->expect.data_offset)) {
    self->Finish(r, ReadStatus::kCorrupt, 0, "header changed");
    return;
  }
  if (static_cast<uint64_t>(r->file_size) != h.data_offset + h.data_length) {
    self->Finish(r, ReadStatus::kCorrupt, 0, "file size does not match header");
    return;
  }
  auto chunk = std::make_shared<const OpenChunk>(r->fd, std::move(r->header), h);
  r->fd = -1;  // the OpenChunk owns it now
  self->files_.Insert(r->path, chunk);
  r->chunk = std::move(chunk);
  self->ReleaseWaiters(r);
  self->ReadData(r);
}

void ChunkReader::ReadData(ChunkRead* r) {
  const Header& h = r->chunk->h;
  r->chunk_crc = h.data_crc;
  if (r->length == 0) {
    Finish(r, ReadStatus::kOk, 0, {});
    return;
  }
  uint64_t first = r->offset / h.block_bytes;
  uint64_t last = (r->offset + r->length - 1) / h.block_bytes;
  r->start = first * h.block_bytes;
  uint64_t end = std::min<uint64_t>((last + 1) * h.block_bytes, h.data_length);
  r->want = end - r->start;
  r->got = 0;
  bool aligned_dest = r->dest && (reinterpret_cast<uintptr_t>(r->dest) % kAlignBytes) == 0;
  if (aligned_dest && r->start == r->offset && r->want == r->length && r->want % kAlignBytes == 0) {
    r->target = r->dest;  // straight into the caller's memory
    r->room = r->length;
  } else {
    // O_DIRECT reads whole 4 KiB units, so the last (short) block's read is
    // rounded up; the file ends there, so no more than `want` bytes arrive.
    r->buffer = AlignedBuffer(pool_, static_cast<size_t>(AlignUp(r->want)));
    if (!r->buffer.data()) {
      Finish(r, ReadStatus::kIoError, ENOMEM, "out of memory for a chunk read");
      return;
    }
    r->target = r->buffer.data();
    r->room = r->buffer.size();
  }
  SubmitData(r);
}

void ChunkReader::SubmitData(ChunkRead* r) {
  r->op = io::Op{};
  r->op.kind = io::Op::kRead;
  r->op.fd = r->chunk->fd;
  r->op.buf = r->target + r->got;
  uint64_t len = r->room - r->got;
  r->op.len = static_cast<uint32_t>(std::min<uint64_t>(len, 1u << 30));
  r->op.offset = r->chunk->h.data_offset + r->start + r->got;
  r->op.done = OnData;
  r->op.user = r;
  loop_.Submit(&r->op);
}

void ChunkReader::OnData(io::Op* op) {
  auto* r = static_cast<ChunkRead*>(op->user);
  ChunkReader* self = r->reader;
  const Header& h = r->chunk->h;
  if (op->result < 0) {
    int err = -op->result;
    self->Finish(r, err == ECANCELED ? ReadStatus::kCancelled : ReadStatus::kIoError, err,
                 std::string("cannot read chunk data: ") + std::strerror(err));
    return;
  }
  self->stats_.bytes_read += static_cast<uint64_t>(op->result);
  r->got += static_cast<uint64_t>(op->result);
  if (r->got < r->want) {
    if (op->result == 0) {
      self->Finish(r, ReadStatus::kCorrupt, 0,
                   "truncated: the file ends " + std::to_string(r->want - r->got) + " bytes early");
      return;
    }
    self->SubmitData(r);
    return;
  }
  // Every block read is checked, including the parts of the first and last
  // that the caller did not ask for: a block's CRC covers the whole block.
  uint32_t first = static_cast<uint32_t>(r->start / h.block_bytes);
  uint32_t count = static_cast<uint32_t>((r->want + h.block_bytes - 1) / h.block_bytes);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t b = first + i;
    const uint8_t* p = r->target + static_cast<uint64_t>(i) * h.block_bytes;
    if (Crc32c(0, p, h.BlockLength(b)) != h.BlockCrc(b)) {
      self->Finish(r, ReadStatus::kCorrupt, 0, "block " + std::to_string(b) + " fails its crc32c");
      return;
    }
  }
  const uint8_t* at = r->target + (r->offset - r->start);
  if (r->dest && r->target != r->dest) {
    std::memcpy(r->dest, at, r->length);
    self->stats_.bytes_copied += r->length;
    at = r->dest;
  }
  r->data = at;
  self->Finish(r, ReadStatus::kOk, 0, {});
}

void ChunkReader::Finish(ChunkRead* r, ReadStatus status, int err, std::string reason) {
  r->status = status;
  r->err = err;
  r->reason = std::move(reason);
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
  r->header = AlignedBuffer();
  if (r->leading) ReleaseWaiters(r);  // they fail the same way
  if (status == ReadStatus::kOk) {
    stats_.reads_ok++;
    stats_.bytes_served += r->length;
  } else {
    r->data = nullptr;
    r->buffer = AlignedBuffer();
    if (status == ReadStatus::kCorrupt) {
      stats_.corrupt++;
      // Never read this open file again: the caller drops the file.
      if (r->chunk) files_.Erase(r->path, r->chunk.get());
    } else if (status != ReadStatus::kCancelled) {
      stats_.errors++;
    }
  }
  r->chunk.reset();
  r->done(r);
}

}  // namespace weightcache::nvme
