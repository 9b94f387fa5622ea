import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS, bodyStream } from '../src/inputs/chunked.js';

const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');

// ------------------------------------------------------------------ fixtures

// The RFC's example shape: two chunks and the last-chunk, nothing after.
const WIKI = Buffer.concat([
  ascii('4\r\n'), // chunk-size 4, CRLF
  ascii('Wiki'), // chunk-data
  ascii('\r\n'), // CRLF after the data
  ascii('5\r\n'), // chunk-size 5
  ascii('pedia\r\n'), // data + CRLF
  ascii('0\r\n'), // last-chunk
  ascii('\r\n'), // empty trailer section: the final CRLF
]);

// Everything the grammar allows that we ignore: extensions with BWS and quoted values,
// upper/lower-case hex with leading zeros, trailer fields, then bytes of the next request.
const RICH = Buffer.concat([
  ascii('0a;name=value\r\n'), // 10 bytes, an extension
  ascii('0123456789\r\n'),
  ascii('1 ; a ; b="q;x"\r\n'), // 1 byte, BWS and two extensions
  ascii('Z\r\n'),
  ascii('00B\r\n'), // 11 bytes, upper-case hex
  Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x1a, 0x45]), // binary data that looks like framing
  ascii('\r\n'),
  ascii('000;last\r\n'), // last-chunk with leading zeros and an extension
  ascii('Expires: never\r\n'), // trailer fields
  ascii('X-Checksum: abc\r\n'),
  ascii('\r\n'), // end of trailers
  ascii('NEXT'), // not ours
]);
const RICH_DATA = Buffer.concat([ascii('0123456789Z'), Buffer.from([0x00, 0x0d, 0x0a, 0xff, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x1a, 0x45])]);

interface Decoded {
  data: Buffer;
  done: boolean;
  rest: Buffer;
}

/** Feeds `parts` one push each; rest gathers what came back after done. */
function decode(parts: Buffer[]): Decoded {
  const decoder = new ChunkedDecoder();
  const data: Buffer[] = [];
  const rest: Buffer[] = [];
  let done = false;
  for (const part of parts) {
    const result = decoder.push(part);
    assert.ok(!done || result.data.length === 0, 'no data after done');
    for (const piece of result.data) assert.ok(piece.length > 0, 'no empty pieces');
    data.push(...result.data);
    if (result.done) rest.push(result.rest!);
    done = result.done;
  }
  assert.equal(decoder.done, done);
  return { data: Buffer.concat(data), done, rest: Buffer.concat(rest) };
}

function bytewise(buf: Buffer): Buffer[] {
  return [...buf].map((byte) => Buffer.from([byte]));
}

function assertBadChunked(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, 'MKV_ERR_BAD_CHUNKED');
    if (message) assert.match(err.message, message);
    return true;
  });
}

// ------------------------------------------------------------------ the decoder

test('decodes two chunks and the last-chunk', () => {
  assert.deepEqual(decode([WIKI]), { data: ascii('Wikipedia'), done: true, rest: Buffer.alloc(0) });
});

test('ignores extensions and trailers, returns the bytes after the body', () => {
  assert.deepEqual(decode([RICH]), { data: RICH_DATA, done: true, rest: ascii('NEXT') });
});

test('every split in two, and byte by byte, decodes the same', () => {
  for (const [fixture, want] of [
    [WIKI, decode([WIKI])],
    [RICH, decode([RICH])],
  ] as const) {
    for (let i = 0; i <= fixture.length; i++) {
      assert.deepEqual(decode([fixture.subarray(0, i), fixture.subarray(i)]), want, `split at ${i}`);
    }
    assert.deepEqual(decode(bytewise(fixture)), want, 'byte by byte');
  }
});

test('every split in three decodes the same', () => {
  const want = decode([RICH]);
  for (let i = 0; i <= RICH.length; i++) {
    for (let j = i; j <= RICH.length; j++) {
      const got = decode([RICH.subarray(0, i), RICH.subarray(i, j), RICH.subarray(j)]);
      assert.deepEqual(got, want, `split at ${i}, ${j}`);
    }
  }
});

test('chunk data are views of the input, not copies', () => {
  const input = Buffer.concat([ascii('6\r\nabcdef\r\n')]);
  const { data } = new ChunkedDecoder().push(input);
  assert.equal(data.length, 1);
  assert.equal(data[0]!.buffer, input.buffer);
  assert.equal(data[0]!.byteOffset, input.byteOffset + 3); // after "6\r\n"
});

test('a chunk larger than the push is delivered piece by piece', () => {
  const decoder = new ChunkedDecoder();
  const first = decoder.push(ascii('10\r\n0123')); // 16 bytes announced, 4 present
  assert.deepEqual(first, { data: [ascii('0123')], done: false });
  const second = decoder.push(ascii('456789abcdef\r\n0\r\n\r\n'));
  assert.deepEqual(second.data, [ascii('456789abcdef')]);
  assert.equal(second.done, true);
});

test('pushes after done return everything as rest', () => {
  const decoder = new ChunkedDecoder();
  decoder.push(ascii('0\r\n\r\n'));
  assert.deepEqual(decoder.push(ascii('GET / HTTP/1.1')), { data: [], done: true, rest: ascii('GET / HTTP/1.1') });
});

test('random chunkings of random data survive random splits', () => {
  let seed = 12345;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 50; round++) {
    const payload = Buffer.from(Array.from({ length: random(3000) }, () => random(256)));
    const encoded: Buffer[] = [];
    for (let pos = 0; pos < payload.length; ) {
      const size = Math.min(1 + random(700), payload.length - pos);
      encoded.push(ascii(`${size.toString(16)}\r\n`), payload.subarray(pos, pos + size), ascii('\r\n'));
      pos += size;
    }
    encoded.push(ascii('0\r\n\r\n'));
    const whole = Buffer.concat(encoded);
    const parts: Buffer[] = [];
    for (let pos = 0; pos < whole.length; ) {
      const n = 1 + random(200);
      parts.push(whole.subarray(pos, pos + n));
      pos += n;
    }
    assert.deepEqual(decode(parts), { data: payload, done: true, rest: Buffer.alloc(0) }, `round ${round}`);
  }
});

// ------------------------------------------------------------------ malformed input

const MALFORMED: [string, Buffer, RegExp][] = [
  ['a size that is not hex', ascii('g\r\n'), /bad chunk size/],
  ['an empty size', ascii('\r\nabc'), /bad chunk size/],
  ['a negative size', ascii('-1\r\n'), /bad chunk size/],
  ['a 0x prefix', ascii('0x10\r\n'), /bad chunk size/],
  ['a size line ending in a bare LF', ascii('3\nabc\r\n'), /LF without CR/],
  ['CR not followed by LF', ascii('3\rabc'), /expected LF/],
  ['data not followed by CRLF', ascii('3\r\nabcX\r\n'), /expected CRLF after chunk data/],
  ['data followed by CR and no LF', ascii('3\r\nabc\rX'), /expected LF after chunk data/],
  ['a size beyond 2^53', ascii('fffffffffffffff\r\n'), /too large/],
  ['a control byte in an extension', Buffer.concat([ascii('3;a'), Buffer.from([0x00]), ascii('\r\n')]), /control byte 0x00/],
  ['a trailer line ending in a bare LF', ascii('0\r\nX: y\n\r\n'), /LF without CR/],
  ['a final CR without LF', ascii('0\r\n\rX'), /expected LF to end/],
];

for (const [what, bytes, message] of MALFORMED) {
  test(`rejects ${what}, however it is split`, () => {
    assertBadChunked(() => decode([bytes]), message);
    for (let i = 0; i <= bytes.length; i++) assertBadChunked(() => decode([bytes.subarray(0, i), bytes.subarray(i)]), message);
    assertBadChunked(() => decode(bytewise(bytes)), message);
  });
}

test('a failed decoder keeps failing', () => {
  const decoder = new ChunkedDecoder();
  assertBadChunked(() => decoder.push(ascii('z')));
  assertBadChunked(() => decoder.push(ascii('0\r\n\r\n')));
});

test('a size line of 1 KiB passes; one byte more fails before its end arrives', () => {
  const fits = ascii(`1;${'e'.repeat(MAX_CHUNK_LINE - 2)}\r\nA\r\n0\r\n\r\n`); // "1;" + 1022 bytes = 1024
  assert.deepEqual(decode([fits]).data, ascii('A'));
  const decoder = new ChunkedDecoder();
  decoder.push(ascii(`1;${'e'.repeat(MAX_CHUNK_LINE - 2)}`)); // 1024 bytes, no CRLF yet: fine
  assertBadChunked(() => decoder.push(ascii('e')), /longer than 1024/); // byte 1025, CRLF never needed
});

test('trailers up to 8 KiB pass; more fail', () => {
  const field = (n: number): string => `X: ${'t'.repeat(n - 5)}\r\n`; // n bytes with its CRLF
  const fits = ascii(`0\r\n${field(MAX_TRAILERS - 2)}\r\n`); // 8190 + the final CRLF = 8192
  assert.equal(decode([fits]).done, true);
  const over = ascii(`0\r\n${field(MAX_TRAILERS - 1)}\r\n`);
  assertBadChunked(() => decode([over]), /trailer section longer/);
});

// ------------------------------------------------------------------ bodyStream on real sockets

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A connected pair on 127.0.0.1: `server` is the accepted side (half-open allowed, as HTTP servers do). */
async function socketPair(): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer({ allowHalfOpen: true });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection');
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const [server] = (await accepted) as [Socket];
  listener.close();
  return { server, client };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/**
 * What `socket` yields (its buffer first) once it has at least `bytes`: a longer answer, or
 * none within 2 s, fails the caller's comparison.
 */
async function readBytes(socket: Socket, bytes: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let got = 0;
  let onData!: (piece: Buffer) => void;
  const enough = new Promise<void>((resolve) => {
    onData = (piece) => {
      pieces.push(piece);
      got += piece.length;
      if (got >= bytes) resolve();
    };
  });
  socket.on('data', onData);
  socket.resume(); // bodyStream hands the socket back paused
  try {
    await withTimeout(enough, 2000, `${bytes} bytes left on the socket`).catch(() => {});
  } finally {
    socket.off('data', onData);
    socket.pause();
  }
  return Buffer.concat(pieces);
}

/** Resolves once `check` holds, looked at every 5 ms for at most `ms`. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  for (const deadline = performance.now() + ms; !check(); ) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('bodyStream: a sized body ends after exactly its length; the rest goes back to the socket', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, ascii('abc'), { length: 10 });
  client.write('defg');
  setTimeout(() => client.write('hijNEXT REQUEST'), 20);
  assert.deepEqual(await withTimeout(readAll(body), 2000, 'body'), ascii('abcdefghij'));
  assert.equal(server.destroyed, false);
  assert.deepEqual(await readBytes(server, 12), ascii('NEXT REQUEST'));
  server.write('HTTP/1.1 200 OK\r\n\r\n'); // the caller can still answer
  assert.deepEqual(await withTimeout(once(client, 'data'), 2000, 'answer'), [ascii('HTTP/1.1 200 OK\r\n\r\n')]);
});

test('bodyStream: a body that came whole with the head never reads the socket', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, ascii('12345678'), { length: 5 });
  assert.deepEqual(await withTimeout(readAll(body), 2000, 'body'), ascii('12345'));
  client.write('9');
  assert.deepEqual(await readBytes(server, 4), ascii('6789'));
  const empty = bodyStream(server, Buffer.alloc(0), { length: 0 });
  assert.deepEqual(await withTimeout(readAll(empty), 2000, 'empty body'), Buffer.alloc(0));
});

test('bodyStream: a chunked body is decoded; bytes after it stay on the socket', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, RICH.subarray(0, 7), { chunked: true });
  const reading = readAll(body);
  for (let pos = 7; pos < RICH.length; pos += 9) {
    client.write(RICH.subarray(pos, pos + 9));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.deepEqual(await withTimeout(reading, 2000, 'body'), RICH_DATA);
  assert.deepEqual(await readBytes(server, 4), ascii('NEXT'));
  assert.equal(server.destroyed, false);
});

test('bodyStream: a close-delimited body ends with the peer; the socket can still answer', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, ascii('first '), { close: true });
  client.end('and last');
  assert.deepEqual(await withTimeout(readAll(body), 2000, 'body'), ascii('first and last'));
  assert.equal(server.writable, true);
  server.end('bye');
  assert.deepEqual(await withTimeout(readAll(client), 2000, 'answer'), ascii('bye'));
});

test('bodyStream: malformed chunked data errors the stream, not the socket', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, ascii('3\r\nabc\r\n'), { chunked: true });
  client.write('zz\r\n');
  await assert.rejects(withTimeout(readAll(body), 2000, 'body'), { code: 'MKV_ERR_BAD_CHUNKED' });
  assert.equal(server.destroyed, false);
  server.write('HTTP/1.1 400 Bad Request\r\n\r\n');
  assert.match(String((await withTimeout(once(client, 'data'), 2000, 'answer'))[0]), /400/);
});

test('bodyStream: a connection that ends early errors a sized or chunked body', async (t) => {
  for (const framing of [{ length: 100 }, { chunked: true }] as const) {
    const { server, client } = await socketPair();
    t.after(() => (server.destroy(), client.destroy()));
    const body = bodyStream(server, ascii('5\r\nab'), framing);
    client.end('c');
    await assert.rejects(withTimeout(readAll(body), 2000, 'body'), { code: 'MKV_ERR_UPLOAD_TRUNCATED' });
  }
});

test('bodyStream: a reset connection errors the body', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, Buffer.alloc(0), { length: 100 });
  const reading = readAll(body);
  client.write('abc');
  setTimeout(() => client.resetAndDestroy(), 20);
  await assert.rejects(withTimeout(reading, 2000, 'body'), (err: Error & { code?: string }) => {
    assert.ok(err.code === 'ECONNRESET' || err.code === 'MKV_ERR_UPLOAD_TRUNCATED', String(err));
    return true;
  });
});

test('bodyStream: a slow reader pauses the socket and bounds what is buffered', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const total = 32 * 1024 * 1024; // more than loopback's kernel buffers absorb
  const highWaterMark = 16 * 1024;
  const body = bodyStream(server, Buffer.alloc(0), { length: total }, { highWaterMark });
  const payload = Buffer.alloc(total, 0x61);
  let writerDone = false;
  client.write(payload, () => (writerDone = true));
  body.read(0); // start, then read nothing
  await until('the body to fill and the socket to be paused', () => body.readableLength >= highWaterMark && server.isPaused());
  assert.ok(body.readableLength <= highWaterMark + 128 * 1024, `buffered ${body.readableLength}`);
  assert.ok(server.readableLength <= 256 * 1024, `socket buffered ${server.readableLength}`);
  assert.equal(writerDone, false, 'the sender felt the backpressure');
  const got = await withTimeout(readAll(body), 5000, 'body');
  assert.equal(got.length, total);
  assert.equal(server.destroyed, false);
});

test('bodyStream: destroying the body leaves the socket open and paused', async (t) => {
  const { server, client } = await socketPair();
  t.after(() => (server.destroy(), client.destroy()));
  const body = bodyStream(server, Buffer.alloc(0), { close: true });
  body.resume();
  client.write('some bytes');
  await withTimeout(once(body, 'data'), 2000, 'data');
  body.destroy();
  await withTimeout(once(body, 'close'), 2000, 'close');
  assert.equal(server.destroyed, false);
  assert.equal(server.isPaused(), true);
  assert.equal(server.listenerCount('data'), 0);
});

test('bodyStream: a length that is not a byte count is refused at once', () => {
  for (const length of [-1, 1.5, Number.NaN, 2 ** 60]) assert.throws(() => bodyStream(new PassThrough(), Buffer.alloc(0), { length }), RangeError);
});
