import { readFileSync } from 'node:fs';
import { UsageError, describeError, isRs256PublicKey, type HooksConfig, type JwtConfig } from '@mkvcast/shared/control-plane';

/** The hook and token options as yargs parses them. */
export interface AccessArgs {
  'hooks-on-publish'?: string;
  'hooks-on-unpublish'?: string;
  'hooks-on-play'?: string;
  'hooks-on-stop'?: string;
  'hooks-timeout': number;
  'jwt-secret'?: string;
  'jwt-key'?: string;
  'jwt-jwks'?: string;
  'jwt-claim': string;
}

function httpUrl(value: string | undefined, option: string): string | null {
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--${option} must be an http:// or https:// URL, not ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${option} must be an http:// or https:// URL, not ${value}`);
  return url.href;
}

export function hooksConfig(args: AccessArgs): HooksConfig {
  const timeout = args['hooks-timeout'];
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 600) {
    throw new UsageError(`--hooks-timeout must be a number of seconds above 0 and up to 600, not ${timeout}`);
  }
  return {
    onPublish: httpUrl(args['hooks-on-publish'], 'hooks-on-publish'),
    onUnpublish: httpUrl(args['hooks-on-unpublish'], 'hooks-on-unpublish'),
    onPlay: httpUrl(args['hooks-on-play'], 'hooks-on-play'),
    onStop: httpUrl(args['hooks-on-stop'], 'hooks-on-stop'),
    timeoutMs: Math.round(timeout * 1000),
  };
}

/** The token options; the --jwt-key file is read here (and checked to be an RSA public key). */
export async function jwtConfig(args: AccessArgs): Promise<JwtConfig> {
  const secret = args['jwt-secret'];
  if (secret === '') throw new UsageError('--jwt-secret must not be empty');
  if (args['jwt-claim'] === '') throw new UsageError('--jwt-claim must name a claim');
  let publicKey: string | null = null;
  const file = args['jwt-key'];
  if (file !== undefined) {
    try {
      publicKey = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --jwt-key ${file}: ${describeError(err)}`);
    }
    if (!(await isRs256PublicKey(publicKey))) {
      throw new UsageError(`--jwt-key ${file} is not a PEM RSA public key (-----BEGIN PUBLIC KEY-----)`);
    }
  }
  return { secret: secret ?? null, publicKey, jwks: httpUrl(args['jwt-jwks'], 'jwt-jwks'), claim: args['jwt-claim'] };
}
