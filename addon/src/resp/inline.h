// Inline commands (`PING\r\n`, what telnet and redis-benchmark's PING_INLINE
// send): one line split into arguments the way Redis's sdssplitargs() does —
// spaces separate, "double quotes" take \n \r \t \b \a \\ \" and \xHH escapes,
// 'single quotes' take only \', and a closing quote must be followed by a
// space or the end. The same rules as src/resp/inline.ts.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace weightcache::resp {

// Splits one line (without its newline) into `out`. False on unbalanced quotes.
bool SplitInline(const char* line, size_t n, std::vector<std::string>& out);

}  // namespace weightcache::resp
