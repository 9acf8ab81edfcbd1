/*
 * rangeclient: a small HTTP/1.1 range-read load generator for loadtest/.
 *
 * Why not only wrk: wrk reads bodies 8 KiB at a time, which costs it 1.3-1.8
 * of this machine's 2 cores on 4 MiB responses and caps the servers it
 * measures. This client reads 256 KiB per recv(), or with --trunc discards
 * the body inside the kernel (recv MSG_TRUNC) to show the server-side bound.
 *
 * One thread per keep-alive connection (blocking sockets: simplest correct
 * thing at 16 connections). Every response's status and Content-Length are
 * checked against the range asked for; any mismatch is an error and ends the
 * connection. Prints one JSON object on stdout.
 *
 * Modes:
 *   --duration S   random aligned ranges for S seconds (after --warmup S)
 *   --once         every aligned range of every target exactly once, shared
 *                  by all connections (time to read a whole model)
 *   --requests N   N random ranges in all, then stop (no warm-up)
 *
 * For the reliability suite (chaos/), which needs every byte checked and
 * every failure counted rather than a clean benchmark:
 *   --verify PREFIX=DIR  compare every body byte with the file DIR/<rest>
 *                  of a target PREFIX<rest> (mmapped): differing bytes are
 *                  counted (wrong_bytes), never silently accepted
 *   --keep-going   a failed request (status, reset, cut body, timeout) is
 *                  counted by kind and the client goes on (reconnecting if
 *                  the connection broke) instead of ending the run; no retry
 *   --range-min N  random lengths in [N, --range] at random unaligned offsets
 *   --timeout S    per-request socket timeout (send and each recv)
 *   --mark-window S  SIGUSR1 marks a moment (a node killed); requests that
 *                  start within S seconds after the last mark also go into
 *                  a second latency list (p99_mark_ms)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 256
#define READ_SIZE (256 * 1024)
#define HDR_MAX 16384
#define MAX_LAT 2000000 /* per thread; bounded memory */

typedef struct {
  char path[1024];
  uint64_t size;
  const unsigned char *map; /* the origin's bytes (--verify), or NULL */
} target_t;

#define MAX_KINDS 24

static target_t targets[MAX_TARGETS];
static int ntargets;
static const char *host = "127.0.0.1";
static int port;
static uint64_t range_len = 4 << 20;
static int conns = 16;
static double duration_s = 5, warmup_s = 1;
static int trunc_mode, once_mode, keep_going;
static uint64_t max_requests, range_min;
static double timeout_s, mark_window_s;
static const char *verify_prefix, *verify_dir;
static atomic_uint_fast64_t issued;   /* requests started in --requests mode */
static atomic_uint_fast64_t mark_ns;  /* CLOCK_MONOTONIC ns of the last SIGUSR1, 0 = none */
static uint64_t seed = 1;
static char host_hdr[128];

static atomic_uint_fast64_t once_next; /* next global range index in --once mode */
static uint64_t once_total;            /* total ranges in --once mode */
static atomic_int stop_flag;
static atomic_int measuring;

typedef struct {
  char what[96];
  uint64_t n;
} kind_t;

typedef struct {
  int id;
  uint64_t reqs, bytes, errors;
  uint32_t *lat_us;
  uint64_t nlat;
  uint32_t *mark_us; /* latencies of requests started within --mark-window of a mark */
  uint64_t nmark;
  uint64_t failed, wrong_bytes, wrong_reads;
  kind_t kinds[MAX_KINDS];
  char err[256];
} worker_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_mark(int sig) {
  (void)sig;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
  atomic_store(&mark_ns, (uint_fast64_t)ts.tv_sec * 1000000000u + (uint_fast64_t)ts.tv_nsec);
}

/* Counts one failure of kind `what` (first words of the error) for this worker. */
static void count_kind(worker_t *w, const char *what) {
  for (int i = 0; i < MAX_KINDS; i++) {
    if (w->kinds[i].n == 0) {
      snprintf(w->kinds[i].what, sizeof w->kinds[i].what, "%s", what);
      w->kinds[i].n = 1;
      return;
    }
    if (!strcmp(w->kinds[i].what, what)) {
      w->kinds[i].n++;
      return;
    }
  }
  w->kinds[MAX_KINDS - 1].n++; /* table full: lump into the last kind */
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int connect_one(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (timeout_s > 0) {
    struct timeval tv = {.tv_sec = (time_t)timeout_s, .tv_usec = (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *b, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Case-insensitive search for a header's value inside the header block. */
static const char *find_header(const char *hdrs, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(hdrs, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') return p + 3 + n;
  }
  return NULL;
}

/* Bytes of got[0..n) that differ from the origin's at `off` (0 without --verify). */
static uint64_t differing(const target_t *t, uint64_t off, const char *got, size_t n) {
  if (!t->map) return 0;
  if (off + n > t->size) return n;
  if (memcmp(t->map + off, got, n) == 0) return 0;
  uint64_t d = 0;
  for (size_t i = 0; i < n; i++) d += t->map[off + i] != (unsigned char)got[i];
  return d;
}

/*
 * One request/response on fd. Returns 0 and adds the body length to *body, or
 * -1 with w->err set (the connection is unusable), or -2 with w->err set when
 * the server answered another status and the connection is still in sync.
 * Body bytes that differ from the origin's are added to w->wrong_bytes.
 * `buf` holds READ_SIZE bytes.
 */
static int one_request(worker_t *w, int fd, const target_t *t, uint64_t off, uint64_t len, char *buf,
                       uint64_t *body) {
  char req[1400];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%llu-%llu\r\n\r\n", t->path, host_hdr,
                   (unsigned long long)off, (unsigned long long)(off + len - 1));
  if (send_all(fd, req, (size_t)n) < 0) {
    snprintf(w->err, sizeof w->err, "send: %s", strerror(errno));
    return -1;
  }
  /* Read until the end of the header block; the first recv may carry body bytes too. */
  char hdr[HDR_MAX + 1];
  size_t have = 0;
  char *end = NULL;
  while (!end) {
    if (have == HDR_MAX) {
      snprintf(w->err, sizeof w->err, "header block over %d bytes", HDR_MAX);
      return -1;
    }
    ssize_t r = recv(fd, hdr + have, HDR_MAX - have, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(w->err, sizeof w->err, "connection closed in headers (%s)", r < 0 ? strerror(errno) : "eof");
      return -1;
    }
    have += (size_t)r;
    hdr[have] = 0;
    end = strstr(hdr, "\r\n\r\n");
  }
  size_t hlen = (size_t)(end - hdr) + 4;
  int status = 0;
  if (sscanf(hdr, "HTTP/1.%*d %d", &status) != 1 || status != 206) {
    if (keep_going && status > 0) {
      /* Read the (small, JSON) error body to keep the connection in sync and name the code. */
      end[2] = 0;
      const char *ecl = find_header(hdr, "Content-Length");
      uint64_t elen = ecl ? strtoull(ecl, NULL, 10) : 0;
      char ebody[512] = "";
      size_t have_body = have - hlen, keep = 0;
      if (have_body > 0) {
        keep = have_body < sizeof ebody - 1 ? have_body : sizeof ebody - 1;
        memcpy(ebody, hdr + hlen, keep);
      }
      uint64_t got = have_body;
      int broken = !ecl || elen > (1u << 20);
      while (!broken && got < elen) {
        ssize_t r = recv(fd, buf, elen - got < READ_SIZE ? (size_t)(elen - got) : READ_SIZE, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          broken = 1;
          break;
        }
        if (keep < sizeof ebody - 1) {
          size_t c = (size_t)r < sizeof ebody - 1 - keep ? (size_t)r : sizeof ebody - 1 - keep;
          memcpy(ebody + keep, buf, c);
          keep += c;
        }
        got += (uint64_t)r;
      }
      ebody[keep] = 0;
      char code[48] = "";
      const char *c = strstr(ebody, "\"code\":\"");
      if (c) sscanf(c + 8, "%47[A-Z_]", code);
      snprintf(w->err, sizeof w->err, "status %d%s%s", status, code[0] ? " " : "", code);
      return broken || find_header(hdr, "Connection") ? -1 : -2;
    }
    snprintf(w->err, sizeof w->err, "status %d for %.100s bytes=%llu+%llu", status, t->path,
             (unsigned long long)off, (unsigned long long)len);
    return -1;
  }
  end[2] = 0; /* headers only, for find_header */
  const char *cl = find_header(hdr, "Content-Length");
  if (!cl) {
    snprintf(w->err, sizeof w->err, "no Content-Length");
    return -1;
  }
  uint64_t clen = strtoull(cl, NULL, 10);
  if (clen != len) {
    snprintf(w->err, sizeof w->err, "Content-Length %llu, asked %llu", (unsigned long long)clen,
             (unsigned long long)len);
    return -1;
  }
  uint64_t got = have - hlen;
  if (got > clen) {
    snprintf(w->err, sizeof w->err, "more bytes than Content-Length");
    return -1;
  }
  uint64_t wrong = differing(t, off, hdr + hlen, (size_t)got);
  while (got < clen) {
    size_t want = clen - got < READ_SIZE ? (size_t)(clen - got) : READ_SIZE;
    /* MSG_TRUNC on TCP: the kernel drops the bytes without copying them to us. */
    ssize_t r = trunc_mode ? recv(fd, NULL, want, MSG_TRUNC) : recv(fd, buf, want, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(w->err, sizeof w->err, "body cut at %llu of %llu (%s)", (unsigned long long)got,
               (unsigned long long)clen, r < 0 ? strerror(errno) : "eof");
      return -1;
    }
    if (!trunc_mode) wrong += differing(t, off + got, buf, (size_t)r);
    got += (uint64_t)r;
  }
  if (wrong > 0) {
    w->wrong_bytes += wrong;
    w->wrong_reads++;
    snprintf(w->err, sizeof w->err, "wrong bytes: %llu in %.100s bytes=%llu+%llu", (unsigned long long)wrong,
             t->path, (unsigned long long)off, (unsigned long long)len);
    if (!keep_going) return -1;
  }
  *body += clen;
  return 0;
}

static void pick(uint64_t *rng, const target_t **t, uint64_t *off, uint64_t *len) {
  *t = &targets[xorshift(rng) % (uint64_t)ntargets];
  if (range_min > 0) {
    uint64_t max = range_len < (*t)->size ? range_len : (*t)->size;
    uint64_t min = range_min < max ? range_min : max;
    *len = min + xorshift(rng) % (max - min + 1);
    *off = xorshift(rng) % ((*t)->size - *len + 1);
    return;
  }
  uint64_t slots = (*t)->size / range_len;
  if (slots == 0) {
    *off = 0;
    *len = (*t)->size;
    return;
  }
  *off = (xorshift(rng) % slots) * range_len;
  *len = range_len;
}

/* --once: global range index → (target, offset, length); the last range of a file may be short. */
static int once_pick(uint64_t idx, const target_t **t, uint64_t *off, uint64_t *len) {
  for (int i = 0; i < ntargets; i++) {
    uint64_t n = (targets[i].size + range_len - 1) / range_len;
    if (idx < n) {
      *t = &targets[i];
      *off = idx * range_len;
      *len = targets[i].size - *off < range_len ? targets[i].size - *off : range_len;
      return 1;
    }
    idx -= n;
  }
  return 0;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  uint64_t rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)w->id * 7919 + 1;
  char *buf = malloc(READ_SIZE);
  w->lat_us = malloc(sizeof(uint32_t) * MAX_LAT);
  if (mark_window_s > 0) w->mark_us = malloc(sizeof(uint32_t) * MAX_LAT);
  int fd = connect_one();
  if (fd < 0 && !keep_going) {
    snprintf(w->err, sizeof w->err, "connect %s:%d: %s", host, port, strerror(errno));
    w->errors++;
    atomic_store(&stop_flag, 1);
    goto out;
  }
  while (!atomic_load(&stop_flag)) {
    const target_t *t;
    uint64_t off, len, body = 0;
    if (once_mode) {
      uint64_t idx = atomic_fetch_add(&once_next, 1);
      if (!once_pick(idx, &t, &off, &len)) break;
    } else {
      if (max_requests > 0 && atomic_fetch_add(&issued, 1) >= max_requests) break;
      pick(&rng, &t, &off, &len);
    }
    double t0 = now_s();
    uint64_t mark = atomic_load(&mark_ns);
    int marked = mark > 0 && t0 - (double)mark / 1e9 < mark_window_s;
    int rc = fd < 0 ? -1 : one_request(w, fd, t, off, len, buf, &body);
    if (fd < 0) snprintf(w->err, sizeof w->err, "connect: %s", strerror(errno));
    if (rc < 0 && !keep_going) {
      w->errors++;
      atomic_store(&stop_flag, 1); /* a wrong answer invalidates the run: stop, report */
      break;
    }
    double lat = now_s() - t0;
    if (rc < 0) {
      /* Counted, not retried. The kind is the error's words before any number or path. */
      w->failed++;
      char kind[96];
      size_t kn = strnlen(w->err, sizeof kind - 1);
      memcpy(kind, w->err, kn);
      kind[kn] = 0;
      for (char *p = kind; *p; p++)
        if ((p[0] == ' ' && (p[1] == '/' || (p[1] >= '0' && p[1] <= '9' && strncmp(kind, "status", 6)))) ||
            *p == '(') {
          *p = 0;
          break;
        }
      for (size_t e = strlen(kind); e > 0 && (kind[e - 1] == ' ' || kind[e - 1] == ':'); e--) kind[e - 1] = 0;
      count_kind(w, kind);
      if (rc == -1) {
        if (fd >= 0) close(fd);
        fd = connect_one();
      }
    }
    if (once_mode || atomic_load(&measuring)) {
      w->reqs++;
      w->bytes += body;
      uint32_t us = (uint32_t)(lat * 1e6);
      if (w->nlat < MAX_LAT) w->lat_us[w->nlat++] = us;
      if (marked && w->mark_us && w->nmark < MAX_LAT) w->mark_us[w->nmark++] = us;
    }
  }
  if (fd >= 0) close(fd);
out:
  free(buf);
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr,
          "usage: rangeclient --port P [--host H] --target PATH:SIZE [...] [--range BYTES] [--conns N]\n"
          "                   [--duration S] [--warmup S] [--trunc] [--once] [--seed N]\n"
          "                   [--requests N] [--range-min BYTES] [--verify PREFIX=DIR] [--keep-going]\n"
          "                   [--timeout S] [--mark-window S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--trunc")) trunc_mode = 1;
    else if (!strcmp(a, "--once")) once_mode = 1;
    else if (!strcmp(a, "--keep-going")) keep_going = 1;
    else if (!v) usage();
    else if (!strcmp(a, "--host")) host = argv[++i];
    else if (!strcmp(a, "--port")) port = atoi(argv[++i]);
    else if (!strcmp(a, "--range")) range_len = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--conns")) conns = atoi(argv[++i]);
    else if (!strcmp(a, "--duration")) duration_s = atof(argv[++i]);
    else if (!strcmp(a, "--warmup")) warmup_s = atof(argv[++i]);
    else if (!strcmp(a, "--seed")) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--requests")) max_requests = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--range-min")) range_min = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(a, "--timeout")) timeout_s = atof(argv[++i]);
    else if (!strcmp(a, "--mark-window")) mark_window_s = atof(argv[++i]);
    else if (!strcmp(a, "--verify")) {
      static char spec[2048];
      snprintf(spec, sizeof spec, "%s", argv[++i]);
      char *eq = strchr(spec, '=');
      if (!eq) usage();
      *eq = 0;
      verify_prefix = spec;
      verify_dir = eq + 1;
    }
    else if (!strcmp(a, "--target")) {
      if (ntargets == MAX_TARGETS) usage();
      const char *spec = argv[++i];
      const char *colon = strrchr(spec, ':');
      if (!colon || (size_t)(colon - spec) >= sizeof targets[0].path) usage();
      memcpy(targets[ntargets].path, spec, (size_t)(colon - spec));
      targets[ntargets].path[colon - spec] = 0;
      targets[ntargets].size = strtoull(colon + 1, NULL, 10);
      ntargets++;
    } else usage();
  }
  if (!port || !ntargets || conns < 1 || conns > 1024 || range_len == 0) usage();
  if (verify_prefix && trunc_mode) usage(); /* nothing to compare when the kernel drops the bytes */
  for (int i = 0; verify_prefix && i < ntargets; i++) {
    size_t pl = strlen(verify_prefix);
    if (strncmp(targets[i].path, verify_prefix, pl) != 0) {
      fprintf(stderr, "rangeclient: target %s does not start with %s\n", targets[i].path, verify_prefix);
      return 2;
    }
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", verify_dir, targets[i].path + pl);
    int fd = open(file, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != targets[i].size) {
      fprintf(stderr, "rangeclient: %s: missing or not %llu bytes\n", file, (unsigned long long)targets[i].size);
      return 2;
    }
    void *m = mmap(NULL, targets[i].size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
      fprintf(stderr, "rangeclient: mmap %s: %s\n", file, strerror(errno));
      return 2;
    }
    targets[i].map = m;
  }
  if (mark_window_s > 0) signal(SIGUSR1, on_mark);
  snprintf(host_hdr, sizeof host_hdr, "%s:%d", host, port);
  if (once_mode) {
    for (int i = 0; i < ntargets; i++) once_total += (targets[i].size + range_len - 1) / range_len;
  }

  worker_t *ws = calloc((size_t)conns, sizeof *ws);
  pthread_t *th = calloc((size_t)conns, sizeof *th);
  for (int i = 0; i < conns; i++) {
    ws[i].id = i;
    pthread_create(&th[i], NULL, worker, &ws[i]);
  }
  double t0 = now_s(), tm = t0;
  if (max_requests > 0) atomic_store(&measuring, 1);
  if (!once_mode && max_requests == 0) {
    /* Warm-up opens connections and lets servers reach steady state; not counted. */
    while (!atomic_load(&stop_flag) && now_s() - t0 < warmup_s) usleep(10000);
    tm = now_s();
    atomic_store(&measuring, 1);
    while (!atomic_load(&stop_flag) && now_s() - tm < duration_s) usleep(10000);
    atomic_store(&stop_flag, 1);
  }
  for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
  double secs = now_s() - tm;

  uint64_t reqs = 0, bytes = 0, errors = 0, nlat = 0, nmark = 0, failed = 0, wrong_bytes = 0, wrong_reads = 0;
  const char *err = "";
  kind_t kinds[MAX_KINDS];
  memset(kinds, 0, sizeof kinds);
  for (int i = 0; i < conns; i++) {
    reqs += ws[i].reqs;
    bytes += ws[i].bytes;
    errors += ws[i].errors;
    nlat += ws[i].nlat;
    nmark += ws[i].nmark;
    failed += ws[i].failed;
    wrong_bytes += ws[i].wrong_bytes;
    wrong_reads += ws[i].wrong_reads;
    if (ws[i].err[0] && !err[0]) err = ws[i].err;
    for (int k = 0; k < MAX_KINDS && ws[i].kinds[k].n; k++) {
      for (int j = 0; j < MAX_KINDS; j++) {
        if (kinds[j].n == 0) kinds[j] = ws[i].kinds[k];
        else if (strcmp(kinds[j].what, ws[i].kinds[k].what)) continue;
        else kinds[j].n += ws[i].kinds[k].n;
        break;
      }
    }
  }
  uint32_t *marks = malloc(sizeof(uint32_t) * (nmark ? nmark : 1));
  for (uint64_t k = 0, i = 0; i < (uint64_t)conns; i++) {
    if (ws[i].nmark) memcpy(marks + k, ws[i].mark_us, sizeof(uint32_t) * ws[i].nmark);
    k += ws[i].nmark;
  }
  qsort(marks, nmark, sizeof(uint32_t), cmp_u32);
  double p99_mark = nmark ? marks[(nmark - 1) * 99 / 100] / 1000.0 : -1;
  uint32_t *all = malloc(sizeof(uint32_t) * (nlat ? nlat : 1));
  uint64_t k = 0;
  for (int i = 0; i < conns; i++) {
    memcpy(all + k, ws[i].lat_us, sizeof(uint32_t) * ws[i].nlat);
    k += ws[i].nlat;
  }
  qsort(all, nlat, sizeof(uint32_t), cmp_u32);
  double p50 = nlat ? all[(nlat - 1) * 50 / 100] / 1000.0 : 0;
  double p99 = nlat ? all[(nlat - 1) * 99 / 100] / 1000.0 : 0;
  double pmax = nlat ? all[nlat - 1] / 1000.0 : 0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  /* Escape the error text minimally for JSON (it never holds control characters). */
  char esc[600];
  size_t e = 0;
  for (const char *p = err; *p && e < sizeof esc - 2; p++) {
    if (*p == '"' || *p == '\\') esc[e++] = '\\';
    esc[e++] = *p;
  }
  esc[e] = 0;
  printf("{\"requests\":%llu,\"bytes\":%llu,\"seconds\":%.4f,\"errors\":%llu,\"p50_ms\":%.3f,"
         "\"p99_ms\":%.3f,\"cpu_s\":%.3f,\"complete\":%s,\"error\":\"%s\",",
         (unsigned long long)reqs, (unsigned long long)bytes, secs, (unsigned long long)errors, p50, p99, cpu,
         once_mode ? (reqs == once_total ? "true" : "false") : "true", esc);
  /* Kinds are built from our own error texts (no quotes or backslashes in them). */
  printf("\"max_ms\":%.3f,\"failed\":%llu,\"wrong_bytes\":%llu,\"wrong_reads\":%llu,\"marked\":%llu,"
         "\"p99_mark_ms\":%.3f,\"failures\":{",
         pmax, (unsigned long long)failed, (unsigned long long)wrong_bytes, (unsigned long long)wrong_reads,
         (unsigned long long)nmark, p99_mark);
  for (int j = 0; j < MAX_KINDS && kinds[j].n; j++)
    printf("%s\"%s\":%llu", j ? "," : "", kinds[j].what, (unsigned long long)kinds[j].n);
  printf("}}\n");
  return errors ? 1 : 0;
}
