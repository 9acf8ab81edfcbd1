/** What every server under test looks like to the scenarios: a port, PIDs for CPU, a stop. */
export interface Server {
  /** Row label, e.g. "weightcache", "nginx (sendfile)". */
  readonly name: string;
  readonly port: number;
  /** Process-tree roots whose CPU counts as the server's. */
  readonly pids: readonly number[];
  /** URL path prefix under which `{container}/{key}` is served ('' for nginx/varnish). */
  readonly pathPrefix: string;
  /**
   * The request target a client sends for `path` (`{pathPrefix}/{container}/{key}`), when not the
   * path itself: a presigned SigV4 URL for a node that verifies signatures.
   */
  target?(path: string): string;
  /** It answers HTTPS (a self-signed certificate for 127.0.0.1); clients that speak only HTTP skip it. */
  readonly tls?: boolean;
  stop(): Promise<void>;
  /** Last log lines of the server (why a request failed), if it keeps any. */
  lastLog?(): string;
}
