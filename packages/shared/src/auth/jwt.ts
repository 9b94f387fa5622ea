import type { CryptoKey, JWTPayload, JWTHeaderParameters } from 'jose';
import type { JwtConfig } from '../config.js';
import { HttpError } from '../http/errors.js';
import type { RequestHead } from '../http/request.js';

export type TokenUse = 'play' | 'publish';

/** Signature algorithms a JWKS may name; never 'none' nor HS* (a public key is no shared secret). */
const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** A JWKS that does not answer within this long refuses the client with 503, ms. */
const JWKS_TIMEOUT_MS = 5000;

/** Tokens are needed when any key is configured. */
export function jwtEnabled(config: JwtConfig): boolean {
  return config.secret !== null || config.publicKey !== null || config.jwks !== null;
}

/** The client's token: `?token=`, or `Authorization: Bearer` (RFC 6750 §2.1, §2.3); null: none given. */
export function tokenOf(head: RequestHead): string | null {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(head.headers.get('authorization') ?? '');
  return bearer?.[1] ?? head.query.get('token') ?? null;
}

type GetKey = (header: JWTHeaderParameters) => Promise<CryptoKey | Uint8Array>;
type Jose = typeof import('jose');

let joseModule: Promise<Jose> | undefined;

/** jose, loaded by the first token check: a process without JWT never pays its ~3 MB (docs/performance.md). */
function jose(): Promise<Jose> {
  return (joseModule ??= import('jose'));
}

/**
 * Checks play and publish tokens against one JwtConfig: the signature
 * (HS256 with the secret, RS256 with the PEM key, or a key of the JWKS),
 * `exp` and `nbf` when present, and the claim naming the stream:
 * a name, `*` for every stream, or an array of those. Publishing needs
 * `publish: true` as well.
 */
export class TokenVerifier {
  readonly #config: JwtConfig;
  readonly #claim: string;
  readonly #algorithms: string[];
  /** Made at the first check, once jose is loaded. */
  #getKey: Promise<GetKey> | undefined;

  constructor(config: JwtConfig) {
    this.#config = config;
    this.#claim = config.claim;
    this.#algorithms = [
      ...(config.secret !== null ? ['HS256'] : []),
      ...(config.publicKey !== null ? ['RS256'] : []),
      ...(config.jwks !== null ? JWKS_ALGORITHMS : []),
    ];
  }

  async #keys(): Promise<GetKey> {
    const { createRemoteJWKSet, importSPKI } = await jose();
    const config = this.#config;
    const secret = config.secret === null ? null : new TextEncoder().encode(config.secret);
    const publicKey = config.publicKey === null ? null : importSPKI(config.publicKey, 'RS256');
    // A bad key fails the tokens that need it (in #getKey), never the process.
    publicKey?.catch(() => undefined);
    // jose caches the set and refetches on an unknown kid, at most every 30 s.
    const jwks = config.jwks === null ? null : createRemoteJWKSet(new URL(config.jwks), { timeoutDuration: JWKS_TIMEOUT_MS });
    return async (header) => {
      if (header.alg === 'HS256' && secret) return secret;
      if (header.alg === 'RS256' && publicKey) return publicKey;
      if (jwks) return jwks(header);
      throw new HttpError('MKV_ERR_TOKEN_INVALID', `tokens signed with ${header.alg ?? 'no algorithm'} are not accepted here`);
    };
  }

  /** Resolves with the token's claims when it grants `use` of `stream`; throws the HttpError that refuses the client. */
  async verify(token: string | null, stream: string, use: TokenUse): Promise<JWTPayload> {
    if (token === null) {
      throw new HttpError('MKV_ERR_TOKEN_MISSING', `${use === 'play' ? 'playing' : 'publishing'} needs a token (?token= or Authorization: Bearer)`, {
        'WWW-Authenticate': 'Bearer realm="mkvcast"',
      });
    }
    const { jwtVerify, errors } = await jose();
    const getKey = await (this.#getKey ??= this.#keys());
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, { algorithms: this.#algorithms }));
    } catch (err) {
      throw refusal(err, errors);
    }
    const granted = payload[this.#claim];
    const names = typeof granted === 'string' ? [granted] : Array.isArray(granted) ? granted : [];
    if (!names.includes('*') && !names.includes(stream)) {
      throw new HttpError('MKV_ERR_TOKEN_FORBIDDEN', `the token is not for stream '${stream}'`);
    }
    if (use === 'publish' && payload.publish !== true) throw new HttpError('MKV_ERR_TOKEN_FORBIDDEN', 'the token does not allow publishing');
    return payload;
  }
}

let last: { key: string; verifier: TokenVerifier } | null = null;

/** The verifier for a config, kept while the config stays the same (a reload may change it). */
export function tokenVerifier(config: JwtConfig): TokenVerifier {
  const key = JSON.stringify([config.secret, config.publicKey, config.jwks, config.claim]);
  if (last?.key !== key) last = { key, verifier: new TokenVerifier(config) };
  return last.verifier;
}

function refusal(err: unknown, errors: Jose['errors']): HttpError {
  if (err instanceof HttpError) return err;
  const challenge = { 'WWW-Authenticate': 'Bearer realm="mkvcast", error="invalid_token"' };
  if (err instanceof errors.JWTExpired) return new HttpError('MKV_ERR_TOKEN_EXPIRED', 'the token has expired', challenge);
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError)) {
    // The key set could not be fetched: the server's trouble, not the client's token.
    return new HttpError('MKV_ERR_AUTH_UNAVAILABLE', 'the token keys cannot be fetched now', { 'Retry-After': '5' });
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
    return new HttpError('MKV_ERR_TOKEN_INVALID', 'the token signature does not verify', challenge);
  }
  return new HttpError('MKV_ERR_TOKEN_INVALID', `invalid token: ${err.message}`, challenge);
}

/** Whether `pem` is a public key that RS256 tokens can be checked with (SPKI PEM). */
export async function isRs256PublicKey(pem: string): Promise<boolean> {
  const { importSPKI } = await jose();
  try {
    await importSPKI(pem, 'RS256');
    return true;
  } catch {
    return false;
  }
}
