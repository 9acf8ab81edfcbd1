/**
 * The Hub door's one error mapping. huggingface_hub turns an answer into its
 * own exceptions by `X-Error-Code` (RepoNotFound → RepositoryNotFoundError,
 * RevisionNotFound, EntryNotFound) and, for a 401, by `X-Error-Message`
 * ("Invalid credentials in Authorization header" is a bad token; any other
 * 401 reads as a repository that is missing or private). The body is the
 * Hub's JSON error, `{"error": "..."}`.
 */
import { CacheError } from '../errors/cache-error.js';
import { httpStatusOf } from '../http/errors.js';

export type HubErrorCode = 'RepoNotFound' | 'RevisionNotFound' | 'EntryNotFound';

/** The exact message huggingface_hub reads as "the token is wrong" (not "the repo is missing"). */
export const INVALID_CREDENTIALS = 'Invalid credentials in Authorization header';

export class HubError extends Error {
  override readonly name = 'HubError';
  constructor(
    readonly status: number,
    message: string,
    readonly code?: HubErrorCode,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export function repoNotFound(repo: string): HubError {
  return new HubError(404, `Repository not found: ${repo}`, 'RepoNotFound');
}

export function revisionNotFound(repo: string, revision: string, why = ''): HubError {
  return new HubError(
    404,
    `Invalid rev id: ${revision} for ${repo}${why ? `: ${why}` : ''}`,
    'RevisionNotFound',
  );
}

export function entryNotFound(repo: string, path: string, commit?: string): HubError {
  return new HubError(
    404,
    `Entry not found: ${path} in ${repo}`,
    'EntryNotFound',
    commit ? { 'X-Repo-Commit': commit } : {},
  );
}

/** Anything thrown → the Hub's terms (status, X-Error-Code, message). */
export function toHubError(err: unknown): HubError {
  if (err instanceof HubError) return err;
  const e = CacheError.from(err);
  if (e.code === 'NOT_FOUND') return new HubError(404, e.message, 'EntryNotFound');
  return new HubError(httpStatusOf(e.code), `${e.code}: ${e.message}`);
}
