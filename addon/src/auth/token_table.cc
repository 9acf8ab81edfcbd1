#include "auth/token_table.h"

#include <atomic>
#include <mutex>

namespace weightcache::auth {

namespace {
std::atomic<uint64_t> g_generation{0};
}  // namespace

uint64_t TokenGeneration() { return g_generation.load(std::memory_order_acquire); }

void TokenTable::Replace(bool enabled, std::vector<TokenGrant> grants) {
  auto s = std::make_shared<State>();
  s->enabled = enabled;
  s->grants = std::move(grants);
  for (size_t i = 0; i < s->grants.size(); i++) {
    if (!s->grants[i].secret.empty()) s->by_key_id[KeyIdOf(s->grants[i].digest)] = i;
  }
  {
    std::unique_lock lock(mu_);
    state_ = std::move(s);
  }
  g_generation.fetch_add(1, std::memory_order_acq_rel);
}

bool TokenTable::enabled() const {
  std::shared_lock lock(mu_);
  return state_->enabled;
}

size_t TokenTable::size() const {
  std::shared_lock lock(mu_);
  return state_->grants.size();
}

std::shared_ptr<const TokenGrant> TokenTable::SigningKey(std::string_view key_id) const {
  std::shared_ptr<const State> s;
  {
    std::shared_lock lock(mu_);
    s = state_;
  }
  if (!s->enabled) return nullptr;
  auto it = s->by_key_id.find(std::string(key_id));
  if (it == s->by_key_id.end()) return nullptr;
  return std::shared_ptr<const TokenGrant>(s, &s->grants[it->second]);
}

std::vector<std::shared_ptr<const TokenGrant>> TokenTable::SigningKeys() const {
  std::shared_ptr<const State> s;
  {
    std::shared_lock lock(mu_);
    s = state_;
  }
  std::vector<std::shared_ptr<const TokenGrant>> out;
  if (!s->enabled) return out;
  for (const TokenGrant& g : s->grants) {
    if (!g.secret.empty()) out.emplace_back(s, &g);
  }
  return out;
}

std::string KeyIdOf(const Digest& d) {
  static const char* kHex = "0123456789abcdef";
  std::string out(20, '0');
  for (size_t i = 0; i < 10; i++) {
    out[2 * i] = kHex[d[i] >> 4];
    out[2 * i + 1] = kHex[d[i] & 15];
  }
  return out;
}

bool GrantAllows(const TokenGrant& g, std::string_view container) {
  if (g.admin || g.all_containers) return true;
  for (const std::string& c : g.containers) {
    if (c == container) return true;
  }
  return false;
}

bool TokenTable::Allows(std::string_view token, std::string_view container) const {
  std::shared_ptr<const State> s;
  {
    std::shared_lock lock(mu_);
    s = state_;
  }
  if (!s->enabled) return true;
  if (token.empty()) return false;
  Digest d = Sha256(token.data(), token.size());
  const TokenGrant* found = nullptr;
  for (const TokenGrant& g : s->grants) {
    // Every entry, every byte: no early exit.
    uint8_t diff = 0;
    for (size_t i = 0; i < d.size(); i++) diff |= static_cast<uint8_t>(d[i] ^ g.digest[i]);
    const TokenGrant* match = diff == 0 ? &g : nullptr;
    if (!found) found = match;
  }
  return found != nullptr && GrantAllows(*found, container);
}

namespace {
bool Ws(char c) { return c == ' ' || c == '\t'; }
}  // namespace

std::string_view BearerToken(std::string_view v) {
  static constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); i++) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  size_t p = kScheme.size();
  if (!Ws(v[p])) return {};
  while (p < v.size() && Ws(v[p])) p++;
  size_t start = p;
  while (p < v.size() && !Ws(v[p])) {
    unsigned char c = static_cast<unsigned char>(v[p]);
    if (c < 0x21 || c > 0x7e) return {};  // JavaScript's \S also takes these; let JavaScript answer
    p++;
  }
  size_t end = p;
  while (p < v.size() && Ws(v[p])) p++;
  if (p != v.size() || end == start) return {};
  return v.substr(start, end - start);
}

}  // namespace weightcache::auth
