#include "http/doors/read_plan.h"

namespace weightcache::http::doors {
namespace {

// A value that is exactly one quoted tag: its inside (else empty and false).
bool LoneTag(std::string_view v, std::string_view& tag) {
  v = Trim(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return false;
  tag = v.substr(1, v.size() - 2);
  return tag.find('"') == std::string_view::npos;
}

}  // namespace

Plan PlanRead(store::Store& store, const store::VersionBinding& v, const ReadAsk& ask, ReadPlan& out) {
  if (ask.if_match) {
    std::string_view tag;
    // resolvePinned: a lone strong If-Match naming another version is JavaScript's to revalidate.
    if (LoneTag(ask.if_match->value, tag) && tag != v.etag) return Plan::kDecline;
    if (!EtagListMatches(ask.if_match->value, v.etag, false)) return Plan::kDecline;  // 412
  }
  if (v.size == 0 || v.chunk_size == 0) return Plan::kDecline;
  if (ask.if_none_match && EtagListMatches(ask.if_none_match->value, v.etag, true)) return Plan::kNotModified;
  bool range_applies = true;
  if (ask.if_range) {
    std::string_view ir = Trim(ask.if_range->value);
    if (ir.substr(0, 1) != "\"" && ir.substr(0, 2) != "W/") return Plan::kDecline;  // a date: JavaScript compares it
    std::string_view tag;
    range_applies = LoneTag(ir, tag) && tag == v.etag;
  }
  std::vector<ByteRange> ranges;
  RangeKind kind = ask.range && range_applies ? ParseRange(ask.range->value, v.size, ask.max_ranges, ranges)
                                              : RangeKind::kNone;
  if (kind == RangeKind::kUnsatisfiable || (kind == RangeKind::kRanges && ranges.size() != 1)) return Plan::kDecline;
  ByteRange r = kind == RangeKind::kRanges ? ranges[0] : ByteRange{0, v.size - 1};
  uint64_t first = r.start / v.chunk_size, last = ask.head_only ? first : r.end / v.chunk_size;
  if (last - first + 1 > ask.max_chunks) return Plan::kDecline;
  out.first_chunk = first;
  out.last_chunk = last;
  store::RangeRequest rq;
  rq.object = v.object;
  rq.size = v.size;
  rq.chunk_size = v.chunk_size;
  rq.start = r.start;
  rq.end = ask.head_only ? r.start : r.end;
  rq.locate_only = ask.head_only;
  store::RangeView view;
  store::RangeStatus got = store::ReadRange(store, ask.disk, rq, &view, ask.token);
  if (got == store::RangeStatus::kMiss || got == store::RangeStatus::kBusy) return Plan::kMiss;
  if (ask.head_only) view.pieces.clear();
  out.partial = kind == RangeKind::kRanges;
  out.range = r;
  out.length = r.end - r.start + 1;
  out.view = std::move(view);
  return got == store::RangeStatus::kPending ? Plan::kPending : Plan::kContent;
}

}  // namespace weightcache::http::doors
