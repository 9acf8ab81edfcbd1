#include "store/disk_reads.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace weightcache::store {

std::unique_ptr<DiskReader> DiskReader::Create(std::shared_ptr<NvmeIndex> index, Callback cb, void* user,
                                               std::string* why) {
  io::LoopOptions lo;
  lo.queue_depth = kDiskQueueDepth;
  std::string fallback;
  std::unique_ptr<io::Loop> loop = io::Loop::Create(lo, &fallback);
  if (!loop) {
    *why = "cannot create an eventfd for NVMe reads";
    return nullptr;
  }
  static std::atomic<bool> logged{false};
  if (!fallback.empty() && !logged.exchange(true)) {
    // Once per process: every thread falls back for the same reason.
    std::fprintf(stderr, "weightcache: native NVMe reads go through a thread pool (no io_uring): %s\n",
                 fallback.c_str());
  }
  return std::unique_ptr<DiskReader>(new DiskReader(std::move(index), std::move(loop), cb, user));
}

DiskReader::DiskReader(std::shared_ptr<NvmeIndex> index, std::unique_ptr<io::Loop> loop, Callback cb, void* user)
    : index_(std::move(index)), loop_(std::move(loop)), pool_(std::make_shared<BufferPool>(kDiskPoolBytes)),
      cb_(cb), user_(user) {
  reader_ = std::make_unique<nvme::ChunkReader>(*loop_, index_->files(), index_->reader_stats(), pool_, true);
}

DiskReader::~DiskReader() {
  closing_ = true;
  loop_->Drain();  // every read completes (cancelled or not); Finish frees its range without calling back
  for (Pending* p : done_) delete p;
  done_.clear();
}

void DiskReader::Start(Pending* p, std::vector<Read*>& reads) {
  ranges_++;
  p->outstanding = static_cast<unsigned>(reads.size()) + 1;  // + 1 while starting: none completes it early
  for (Read* r : reads) {
    charged_ += r->charge;
    index_->stats().buffer_bytes += r->charge;
    index_->stats().reads_in_flight++;
    r->done = OnRead;
    r->user = this;
    reader_->Read(r);
  }
  if (--p->outstanding == 0) {
    // Every read finished without I/O (a failure found before submitting): handed on from Poll,
    // never from inside the caller's ReadRange.
    done_.push_back(p);
    uint64_t one = 1;
    ssize_t w = write(loop_->event_fd(), &one, sizeof one);
    (void)w;
  }
}

void DiskReader::OnRead(nvme::ChunkRead* cr) {
  auto* r = static_cast<Read*>(cr);
  auto* self = static_cast<DiskReader*>(r->user);
  Pending* p = r->range;
  NvmeReadStats& st = self->index_->stats();
  st.reads_in_flight--;
  Piece& piece = p->view.pieces[r->piece];
  if (r->status == nvme::ReadStatus::kOk && !p->failed && r->fill) {
    // Verified bytes in store memory: published, and the piece holds a reference to them.
    self->charged_ -= r->charge;
    st.buffer_bytes -= r->charge;
    r->store->Commit(r->fill, r->id, r->chunk_crc, std::move(r->label));
    piece.data = r->fill.data();
    piece.from_disk = true;
    piece.ref = std::move(r->fill);
    st.promoted++;
  } else if (r->status == nvme::ReadStatus::kOk && !p->failed) {
    piece.data = r->data;
    // Charged already; the buffer gives the charge back when the door drops it.
    piece.buffer = ReadBuffer(std::move(r->buffer), r->charge, &st.buffer_bytes, &self->charged_);
  } else {
    self->charged_ -= r->charge;
    st.buffer_bytes -= r->charge;
    if (r->status != nvme::ReadStatus::kOk && !p->failed) {
      p->failed = true;
      if (r->status == nvme::ReadStatus::kCorrupt) st.to_js_corrupt++;
      else st.to_js_missing++;
    }
  }
  delete r;
  if (--p->outstanding == 0) self->Finish(p);
}

void DiskReader::Finish(Pending* p) {
  ranges_--;
  if (closing_) {
    delete p;
    return;
  }
  RangeStatus status = p->failed ? RangeStatus::kMiss : RangeStatus::kReady;
  if (p->failed) p->view.pieces.clear();  // no byte of a range with a failed read is ever sent
  else index_->stats().ranges++;
  uint64_t token = p->token;
  RangeView view = std::move(p->view);
  delete p;
  cb_(user_, token, status, std::move(view));
}

void DiskReader::Poll() {
  loop_->Poll();
  while (!done_.empty()) {
    std::vector<Pending*> ready;
    ready.swap(done_);
    for (Pending* p : ready) Finish(p);
  }
}

void DiskReader::Flush() {
  if (loop_->queued() > 0) loop_->Flush();
}

}  // namespace weightcache::store
