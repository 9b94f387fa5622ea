// Play and publish tokens: HS256, RS256 from a PEM key, a JWKS served over real HTTP; the
// stream claim (a name, '*', an array, another claim name), exp, and the refusal codes.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import type { JwtConfig } from '../src/config.js';
import { HttpError } from '../src/http/errors.js';
import { parseHead } from '../src/http/request.js';
import { TokenVerifier, isRs256PublicKey, jwtEnabled, tokenOf } from '../src/auth/jwt.js';

const SECRET = 'correct horse battery staple';
const none: JwtConfig = { secret: null, publicKey: null, jwks: null, claim: 'stream' };

function hs256(claims: JWTPayload, secret = SECRET, exp: string | number = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

function rs256(claims: JWTPayload, key: CryptoKey, kid?: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', ...(kid ? { kid } : {}) }).setExpirationTime('1h').sign(key);
}

async function refusal(promise: Promise<unknown>): Promise<HttpError> {
  const err = await promise.then(
    () => assert.fail('the token should have been refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HttpError, `an HttpError, not ${String(err)}`);
  return err;
}

describe('tokenOf and jwtEnabled', () => {
  it('takes Authorization: Bearer first, then ?token=', () => {
    assert.equal(tokenOf(parseHead('GET /live/x?token=q HTTP/1.1\r\nAuthorization: Bearer h.e.s')), 'h.e.s');
    assert.equal(tokenOf(parseHead('GET /live/x?token=q HTTP/1.1\r\nAuthorization: Basic eDp5')), 'q');
    assert.equal(tokenOf(parseHead('GET /live/x HTTP/1.1\r\nHost: x')), null);
  });

  it('tokens are needed once any key is configured', () => {
    assert.equal(jwtEnabled(none), false);
    assert.equal(jwtEnabled({ ...none, secret: 's' }), true);
    assert.equal(jwtEnabled({ ...none, jwks: 'http://x/' }), true);
  });
});

describe('HS256 tokens', () => {
  const verifier = new TokenVerifier({ ...none, secret: SECRET });

  it('a token for the stream lets a player in', async () => {
    const claims = await verifier.verify(await hs256({ stream: 'cam' }), 'cam', 'play');
    assert.equal(claims.stream, 'cam');
  });

  it("'*' grants every stream, an array the streams it names", async () => {
    await verifier.verify(await hs256({ stream: '*' }), 'anything', 'play');
    await verifier.verify(await hs256({ stream: ['a', 'cam'] }), 'cam', 'play');
    const err = await refusal(verifier.verify(await hs256({ stream: ['a', 'b'] }), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_FORBIDDEN');
  });

  it('a token for another stream, or naming none, is refused with 403', async () => {
    for (const claims of [{ stream: 'other' }, {}, { stream: 7 }]) {
      const err = await refusal(verifier.verify(await hs256(claims), 'cam', 'play'));
      assert.equal(err.code, 'MKV_ERR_TOKEN_FORBIDDEN', JSON.stringify(claims));
      assert.equal(err.status, 403);
    }
  });

  it('no token, an expired one, one signed with another secret or a garbled one: 401', async () => {
    const cases: [string | null, string][] = [
      [null, 'MKV_ERR_TOKEN_MISSING'],
      [await hs256({ stream: 'cam' }, SECRET, Math.floor(Date.now() / 1000) - 60), 'MKV_ERR_TOKEN_EXPIRED'],
      [await hs256({ stream: 'cam' }, 'another secret'), 'MKV_ERR_TOKEN_INVALID'],
      ['not.a.token', 'MKV_ERR_TOKEN_INVALID'],
    ];
    for (const [token, code] of cases) {
      const err = await refusal(verifier.verify(token, 'cam', 'play'));
      assert.equal(err.code, code, `${token}: ${err.message}`);
      assert.equal(err.status, 401);
      assert.match(err.headers['WWW-Authenticate'] ?? '', /^Bearer /);
    }
  });

  it('an unsigned token (alg none) is refused', async () => {
    const body = Buffer.from(JSON.stringify({ stream: 'cam' })).toString('base64url');
    const head = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const err = await refusal(verifier.verify(`${head}.${body}.`, 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_INVALID');
  });

  it('publishing needs publish: true as well', async () => {
    await verifier.verify(await hs256({ stream: 'cam', publish: true }), 'cam', 'publish');
    const err = await refusal(verifier.verify(await hs256({ stream: 'cam' }), 'cam', 'publish'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_FORBIDDEN');
    assert.match(err.message, /does not allow publishing/);
  });

  it('--jwt-claim names another claim', async () => {
    const room = new TokenVerifier({ ...none, secret: SECRET, claim: 'room' });
    await room.verify(await hs256({ room: 'cam' }), 'cam', 'play');
    const err = await refusal(room.verify(await hs256({ stream: 'cam' }), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_FORBIDDEN');
  });
});

describe('RS256 tokens from a PEM public key', () => {
  let keys: { privateKey: CryptoKey; publicKey: CryptoKey };
  let other: { privateKey: CryptoKey; publicKey: CryptoKey };
  let verifier: TokenVerifier;
  before(async () => {
    keys = await generateKeyPair('RS256', { extractable: true });
    other = await generateKeyPair('RS256');
    const pem = await exportSPKI(keys.publicKey);
    assert.equal(await isRs256PublicKey(pem), true);
    assert.equal(await isRs256PublicKey('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n'), false);
    verifier = new TokenVerifier({ ...none, publicKey: pem });
  });

  it('a token signed with the private key passes; one signed with another key does not', async () => {
    await verifier.verify(await rs256({ stream: 'cam' }, keys.privateKey), 'cam', 'play');
    const err = await refusal(verifier.verify(await rs256({ stream: 'cam' }, other.privateKey), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_INVALID');
  });

  it('an HS256 token is not accepted where only a public key is configured', async () => {
    const err = await refusal(verifier.verify(await hs256({ stream: 'cam' }), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_INVALID');
  });
});

describe('tokens checked against a JWKS URL', () => {
  let server: http.Server;
  let url: string;
  let keys: { privateKey: CryptoKey; publicKey: CryptoKey };
  let fetches = 0;
  before(async () => {
    keys = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('verifies with the set fetched once, and refuses a kid it does not hold', async () => {
    const verifier = new TokenVerifier({ ...none, jwks: url });
    await verifier.verify(await rs256({ stream: 'cam' }, keys.privateKey, 'k1'), 'cam', 'play');
    await verifier.verify(await rs256({ stream: '*' }, keys.privateKey, 'k1'), 'cam', 'play');
    assert.equal(fetches, 1, 'the key set is cached');
    const err = await refusal(verifier.verify(await rs256({ stream: 'cam' }, keys.privateKey, 'k9'), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_TOKEN_INVALID');
  });

  it('a key set that cannot be fetched refuses with 503, not as a bad token', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const verifier = new TokenVerifier({ ...none, jwks: `http://127.0.0.1:${port}/jwks` });
    const err = await refusal(verifier.verify(await rs256({ stream: 'cam' }, keys.privateKey, 'k1'), 'cam', 'play'));
    assert.equal(err.code, 'MKV_ERR_AUTH_UNAVAILABLE');
    assert.equal(err.status, 503);
  });
});
