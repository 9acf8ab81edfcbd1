#include "http/errors.h"

namespace weightcache::http {

namespace {

struct Row {
  int status;
  const char* name;
  const char* description;
};

constexpr Row kRows[] = {
#define WEIGHTCACHE_HTTP_ROW(e, status, name, desc) {status, name, desc},
    WEIGHTCACHE_HTTP_ERRORS(WEIGHTCACHE_HTTP_ROW)
#undef WEIGHTCACHE_HTTP_ROW
};

const Row& RowOf(Error e) { return kRows[static_cast<int>(e)]; }

}  // namespace

int StatusOf(Error e) { return RowOf(e).status; }
const char* NameOf(Error e) { return RowOf(e).name; }
const char* DescribeError(Error e) { return RowOf(e).description; }
int ErrorCount() { return static_cast<int>(sizeof kRows / sizeof kRows[0]); }

}  // namespace weightcache::http
