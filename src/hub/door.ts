/**
 * The Hugging Face Hub door: what huggingface_hub (`HF_ENDPOINT`),
 * transformers, vLLM and HfFileSystem call to download a model, translated
 * onto the listings and the object read below the doors. Model repos only.
 *
 *   GET  /api/models/{repo}[/revision/{rev}]       model info: id, sha, siblings
 *   GET  /api/models/{repo}/tree/{rev}[/{path}]    files and folders, paged (Link: rel="next")
 *   POST /api/models/{repo}/paths-info/{rev}       the entries of the given paths
 *   HEAD|GET /{repo}/resolve/{rev}/{path}          a file, pinned to the revision's version
 *
 * `Authorization: Bearer <token>` is checked against the node's tokens and
 * the Hub container's scope. Errors carry the Hub's X-Error-Code (errors.ts).
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { allows, type TokenSet } from '../auth/tokens.js';
import { CacheError } from '../errors/cache-error.js';
import { type Door, makeDoor } from '../http/door.js';
import { decodeSegments } from '../http/object-path.js';
import { clientAbort } from '../http/request.js';
import { admitRead, contentTypeOf, type Headers, sendRead } from '../http/send-read.js';
import { targetOf } from '../http/target.js';
import type { Listings } from '../read/listings.js';
import type { ObjectReader } from '../read/object-read.js';
import { contentRange } from '../read/range.js';
import {
  entryNotFound,
  HubError,
  INVALID_CREDENTIALS,
  repoNotFound,
  revisionNotFound,
  toHubError,
} from './errors.js';
import type { HubNativeRevisions } from './native-revisions.js';
import {
  blobId,
  DEFAULT_REVISION,
  fileAt,
  pathOf,
  type Revision,
  resolveRevision,
  treeEntries,
} from './revision.js';

type Env = { Bindings: HttpBindings };

export interface HubDoorOptions {
  readonly path: string;
  readonly listen: { readonly host: string; readonly port: number } | null;
  /** The container whose key prefix `org/name/` is repo `org/name`. */
  readonly container: string;
  /** Tree entries per page. */
  readonly treePageSize: number;
  readonly tokens: TokenSet | null;
  readonly reader: ObjectReader;
  readonly listings: Listings;
  /** With the native door's fast path: where resolved revisions are published (native-revisions.ts). */
  readonly native?: HubNativeRevisions | null;
}

/** Operations under /api/models/{repo}/. */
const API_OPS = new Set(['revision', 'tree', 'paths-info']);
/** Most bytes of a paths-info form we read. */
const FORM_MAX_BYTES = 64 * 1024;

export function hubDoor(o: HubDoorOptions): Door {
  return makeDoor('hub', o, (prefix, c) => handle(o, prefix, c), answerError);
}

async function handle(o: HubDoorOptions, prefix: string, c: Context<Env>): Promise<Response> {
  authorize(o, c);
  const { path } = targetOf(c.env.incoming);
  const segs = decodeSegments(path.slice(prefix.length + 1));
  const method = c.req.method;
  if (segs[0] === 'api') {
    if (segs[1] !== 'models') {
      throw new HubError(
        404,
        `weightcache serves model repos only (/api/models/...), not /api/${segs[1] ?? ''}`,
        'RepoNotFound',
      );
    }
    return api(o, c, segs.slice(2), method);
  }
  // /{repo}/resolve/{rev}/{path}: a repo is "name" or "org/name".
  const at = segs[2] === 'resolve' ? 2 : segs[1] === 'resolve' ? 1 : -1;
  if (at < 0 || segs.length < at + 3 || (method !== 'GET' && method !== 'HEAD')) {
    throw new HubError(404, `no Hub route for ${method} ${path}`);
  }
  const repo = segs.slice(0, at).join('/');
  return resolveFile(o, c, repo, segs[at + 1]!, segs.slice(at + 2).join('/'));
}

async function api(o: HubDoorOptions, c: Context<Env>, segs: string[], method: string): Promise<Response> {
  const at =
    segs.length >= 3 && API_OPS.has(segs[2]!) ? 2 : segs.length >= 2 && API_OPS.has(segs[1]!) ? 1 : -1;
  const repo = (at < 0 ? segs : segs.slice(0, at)).join('/');
  const op = at < 0 ? 'info' : segs[at]!;
  const revision = at < 0 ? DEFAULT_REVISION : (segs[at + 1] ?? DEFAULT_REVISION);
  const rest = at < 0 ? '' : segs.slice(at + 2).join('/');
  if (repo === '' || (op === 'info' && segs.length > 2)) throw repoNotFound(segs.join('/'));
  const wants = op === 'paths-info' ? 'POST' : 'GET';
  if (method !== wants) throw new HubError(405, `${op} takes ${wants}`);
  const rev = await resolveRevision(o.listings, o.container, repo, revision, clientAbort(c.env.outgoing));
  o.native?.publish(rev);
  if (op === 'info') return c.json(modelInfo(rev));
  if (op === 'revision') return c.json(modelInfo(rev));
  if (op === 'paths-info') return c.json(await pathsInfo(rev, c));
  return tree(o, c, rev, rest);
}

function modelInfo(rev: Revision) {
  const files = rev.listing.files;
  const lastModified = files.reduce((t, f) => Math.max(t, f.lastModified.getTime()), 0);
  const author = rev.repo.includes('/') ? rev.repo.split('/')[0] : undefined;
  return {
    _id: rev.sha.slice(0, 24),
    id: rev.repo,
    modelId: rev.repo,
    ...(author ? { author } : {}),
    sha: rev.sha,
    lastModified: new Date(lastModified).toISOString(),
    createdAt: new Date(lastModified).toISOString(),
    private: false,
    disabled: false,
    gated: false,
    downloads: 0,
    likes: 0,
    tags: [],
    siblings: files.map((f) => ({ rfilename: pathOf(rev, f), size: f.size, blobId: blobId(f) })),
    usedStorage: files.reduce((n, f) => n + f.size, 0),
  };
}

function tree(o: HubDoorOptions, c: Context<Env>, rev: Revision, dir: string): Response {
  const recursive = c.req.query('recursive') === 'true' || c.req.query('recursive') === 'True';
  const entries = treeEntries(rev, dir, recursive);
  if (!entries) throw entryNotFound(rev.repo, dir, rev.sha);
  const start = decodeCursor(c.req.query('cursor'), rev.sha);
  const pageEntries = entries.slice(start, start + o.treePageSize);
  if (start + o.treePageSize < entries.length) {
    // The next page names this snapshot, so paging on after `main` moved still sees one revision.
    const next = new URL(c.req.url);
    next.searchParams.set(
      'cursor',
      Buffer.from(JSON.stringify([rev.sha, start + o.treePageSize])).toString('base64url'),
    );
    c.header('Link', `<${next.toString()}>; rel="next"`);
  }
  return c.json(pageEntries);
}

function decodeCursor(cursor: string | undefined, sha: string): number {
  if (cursor === undefined) return 0;
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v[0] === sha && Number.isSafeInteger(v[1]) && v[1] >= 0) return v[1];
  } catch {
    // below
  }
  throw new HubError(400, 'the cursor is not one this server issued for this revision');
}

async function pathsInfo(rev: Revision, c: Context<Env>) {
  const length = Number(c.req.header('content-length') ?? '0');
  if (length > FORM_MAX_BYTES)
    throw new HubError(413, `a paths-info form larger than ${FORM_MAX_BYTES} bytes`);
  const body = await c.req.text();
  if (body.length > FORM_MAX_BYTES)
    throw new HubError(413, `a paths-info form larger than ${FORM_MAX_BYTES} bytes`);
  const type = c.req.header('content-type') ?? '';
  const paths = type.includes('json')
    ? ((JSON.parse(body) as { paths?: string[] }).paths ?? [])
    : new URLSearchParams(body).getAll('paths');
  const all = treeEntries(rev, '', true) ?? [];
  const byPath = new Map(all.map((e) => [e.path, e]));
  return paths.flatMap((p) => {
    const e = byPath.get(p.replace(/\/+$/, ''));
    return e ? [e] : [];
  });
}

async function resolveFile(o: HubDoorOptions, c: Context<Env>, repo: string, revision: string, path: string) {
  const res = c.env.outgoing;
  const signal = clientAbort(res);
  let rev = await resolveRevision(o.listings, o.container, repo, revision, signal);
  o.native?.publish(rev);
  let file = fileAt(rev, path);
  if (!file) throw entryNotFound(repo, path, rev.sha);
  const head = c.req.method === 'HEAD';
  const header = (h: string) => c.req.header(h);
  const open = () =>
    o.reader.open({
      name: { container: o.container, key: file!.key },
      head,
      // Pinned to the snapshot's version: every file of one revision is of that revision.
      version: file!.etag,
      header,
      range: header('range'),
      maxRanges: 1,
      signal,
      door: 'hub',
      admit: admitRead(res),
    });
  let read: Awaited<ReturnType<typeof open>>;
  try {
    read = await open();
  } catch (err) {
    if (!CacheError.is(err, 'PRECONDITION_FAILED') && !CacheError.is(err, 'NOT_FOUND')) throw err;
    if (revision !== DEFAULT_REVISION) {
      throw revisionNotFound(repo, revision, `${path} has changed at the origin since; resolve main again`);
    }
    // `main` moved between the listing and the read: list once more.
    rev = await resolveRevision(o.listings, o.container, repo, revision, signal);
    o.native?.publish(rev);
    file = fileAt(rev, path);
    if (!file) throw entryNotFound(repo, path, rev.sha);
    read = await open();
  }
  const info = read.info;
  const base: Headers = {
    'X-Repo-Commit': rev.sha,
    ETag: `"${info.etag}"`,
    'X-Linked-Etag': `"${blobId(info)}"`,
    'X-Linked-Size': String(info.size),
    'Last-Modified': info.lastModified.toUTCString(),
    'Accept-Ranges': 'bytes',
  };
  if (read.kind === 'not-modified') {
    res.writeHead(304, base).end();
    return RESPONSE_ALREADY_SENT;
  }
  if (read.kind === 'unsatisfiable') {
    throw new HubError(416, `range not satisfiable for a file of ${info.size} bytes`, undefined, {
      'Content-Range': `bytes */${info.size}`,
    });
  }
  const headers: Headers = {
    ...base,
    'Content-Type': contentTypeOf(path),
    'Content-Length': read.length,
    'X-Cache-Source': read.source,
  };
  if (read.partial) headers['Content-Range'] = contentRange(read.ranges[0]!, info.size);
  await sendRead(res, head, read.partial ? 206 : 200, headers, read);
  return RESPONSE_ALREADY_SENT;
}

function authorize(o: HubDoorOptions, c: Context<Env>): void {
  if (!o.tokens) return;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
  if (!m) {
    // As the Hub answers for a private repo: huggingface_hub raises RepositoryNotFoundError, whose
    // message tells the user to authenticate.
    throw new HubError(401, 'this node needs a token: set HF_TOKEN to one of its tokens', 'RepoNotFound');
  }
  const grant = o.tokens.check(m[1]!);
  if (!grant) throw new HubError(401, INVALID_CREDENTIALS);
  if (!allows(grant, o.container)) {
    throw new HubError(403, `this token may not read container ${o.container}, where the Hub's repos live`);
  }
}

function answerError(c: Context<Env>, err: unknown): Response {
  const e = toHubError(err);
  const headers: Record<string, string> = {
    ...e.headers,
    'X-Error-Message': e.message.replace(/[\r\n]+/g, ' '),
  };
  if (e.code) headers['X-Error-Code'] = e.code;
  if (c.req.method === 'HEAD') return c.body(null, e.status as 400, headers);
  return c.json({ error: e.message }, e.status as 400, headers);
}
