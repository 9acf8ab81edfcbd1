/**
 * Where the S3 origin's credentials come from (origin.s3.credentials.source):
 *
 *   env          AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *   file         an AWS shared credentials file (INI), one profile
 *   webIdentity  IRSA-style: a projected service-account token exchanged at STS
 *                (AssumeRoleWithWebIdentity) for temporary credentials, renewed
 *                five minutes before they expire
 *   none         anonymous: requests are not signed (public buckets)
 *
 * Secrets never reach an error message or the origin's id.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CacheError } from '../errors/cache-error.js';
import type { Credentials } from '../s3/sigv4.js';

export interface CredentialSource {
  /** null: anonymous. */
  get(signal?: AbortSignal): Promise<Credentials | null>;
}

export type CredentialsConfig =
  | { readonly source: 'env' }
  | { readonly source: 'none' }
  | { readonly source: 'file'; readonly file: string | null; readonly profile: string }
  | {
      readonly source: 'webIdentity';
      readonly roleArn: string | null;
      readonly tokenFile: string | null;
      readonly stsEndpoint: string | null;
      readonly sessionName: string;
    };

/** Renew temporary credentials this long before they expire. */
const RENEW_BEFORE_MS = 5 * 60_000;
/** Most bytes of an STS answer we read. */
const STS_MAX_BYTES = 64 * 1024;

export function credentialSource(
  c: CredentialsConfig,
  region: string,
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 30_000,
): CredentialSource {
  switch (c.source) {
    case 'none':
      return { get: async () => null };
    case 'env': {
      const accessKeyId = env.AWS_ACCESS_KEY_ID;
      const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
      if (!accessKeyId || !secretAccessKey) {
        throw new CacheError(
          'CONFIG_INVALID',
          'origin.s3.credentials.source is env but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not set',
        );
      }
      const creds = { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN || undefined };
      return { get: async () => creds };
    }
    case 'file': {
      const creds = readCredentialsFile(c.file ?? join(homedir(), '.aws', 'credentials'), c.profile);
      return { get: async () => creds };
    }
    case 'webIdentity':
      return new WebIdentity(c, region, env, timeoutMs);
  }
}

function readCredentialsFile(file: string, profile: string): Credentials {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CacheError(
      'CONFIG_INVALID',
      `origin.s3.credentials.file: cannot read ${file}: ${(err as Error).message}`,
    );
  }
  let section = '';
  const values: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const head = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
    if (head) {
      section = head[1]!;
      continue;
    }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (kv && section === profile) values[kv[1]!.toLowerCase()] = kv[2]!;
  }
  const accessKeyId = values.aws_access_key_id;
  const secretAccessKey = values.aws_secret_access_key;
  if (!accessKeyId || !secretAccessKey) {
    throw new CacheError(
      'CONFIG_INVALID',
      `origin.s3.credentials: profile [${profile}] in ${file} has no aws_access_key_id and aws_secret_access_key`,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken: values.aws_session_token || undefined };
}

class WebIdentity implements CredentialSource {
  private current: { creds: Credentials; expires: number } | undefined;
  private pending: Promise<Credentials> | undefined;
  private readonly roleArn: string;
  private readonly tokenFile: string;
  private readonly sts: string;

  constructor(
    private readonly c: Extract<CredentialsConfig, { source: 'webIdentity' }>,
    region: string,
    env: NodeJS.ProcessEnv,
    private readonly timeoutMs: number,
  ) {
    const roleArn = c.roleArn ?? env.AWS_ROLE_ARN;
    const tokenFile = c.tokenFile ?? env.AWS_WEB_IDENTITY_TOKEN_FILE;
    if (!roleArn || !tokenFile) {
      throw new CacheError(
        'CONFIG_INVALID',
        'origin.s3.credentials: webIdentity needs roleArn and tokenFile (or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)',
      );
    }
    this.roleArn = roleArn;
    this.tokenFile = tokenFile;
    this.sts = (c.stsEndpoint ?? env.AWS_ENDPOINT_URL_STS ?? `https://sts.${region}.amazonaws.com`).replace(
      /\/+$/,
      '',
    );
  }

  async get(): Promise<Credentials> {
    if (this.current && Date.now() < this.current.expires - RENEW_BEFORE_MS) return this.current.creds;
    // One exchange at a time; every caller waiting for renewal shares it.
    this.pending ??= this.assume().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async assume(): Promise<Credentials> {
    let token: string;
    try {
      // Re-read each time: the kubelet rotates the projected token.
      token = readFileSync(this.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new CacheError(
        'ORIGIN_UNAVAILABLE',
        `s3 web identity: cannot read ${this.tokenFile}: ${(err as Error).message}`,
      );
    }
    const params = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: this.roleArn,
      RoleSessionName: this.c.sessionName,
      WebIdentityToken: token,
    });
    let body: string;
    let status: number;
    try {
      const res = await fetch(`${this.sts}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: params.toString(),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = res.status;
      body = (await res.text()).slice(0, STS_MAX_BYTES);
    } catch (err) {
      throw new CacheError(
        'ORIGIN_UNAVAILABLE',
        `s3 web identity: STS at ${this.sts} failed: ${(err as Error).message}`,
      );
    }
    if (status !== 200) {
      const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? '';
      throw new CacheError('ORIGIN_UNAVAILABLE', `s3 web identity: STS answered ${status} ${code}`.trim());
    }
    const field = (name: string) =>
      /<Credentials>[\s\S]*?<\/Credentials>/
        .exec(body)?.[0]
        .match(new RegExp(`<${name}>([^<]*)</${name}>`))?.[1];
    const accessKeyId = field('AccessKeyId');
    const secretAccessKey = field('SecretAccessKey');
    const expires = Date.parse(field('Expiration') ?? '');
    if (!accessKeyId || !secretAccessKey || Number.isNaN(expires)) {
      throw new CacheError('ORIGIN_UNAVAILABLE', 's3 web identity: STS answer holds no credentials');
    }
    const creds = { accessKeyId, secretAccessKey, sessionToken: field('SessionToken') };
    this.current = { creds, expires };
    return creds;
  }
}
