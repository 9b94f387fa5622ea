/**
 * Frames a Matroska/WebM byte stream into the pieces a live server moves
 * around: the EBML header, Segment starts, whole header elements (Info,
 * Tracks, …) and whole Clusters. It finds boundaries and copies bytes out; it
 * decodes nothing inside them.
 *
 * Incremental: push() bytes as they arrive, end() at end of input. An
 * explicit state machine over one growable buffer: each state returns when it
 * runs out of bytes and resumes where it stopped, so no byte is walked twice
 * however the input is chunked. Declared sizes are checked against limits but
 * never used to allocate.
 */
import { CorruptStreamError, ElementTooLargeError, TruncatedStreamError } from '../errors.js';
import { EBML_ID, HEADER_ELEMENT_IDS, LEVEL1_IDS, MKV_ID } from './ids.js';
import { CORRUPT, UNKNOWN_SIZE, readId, readSize } from './vint.js';

export type ScanEvent =
  /** The whole EBML header element (ID, size, body) and its DocType. */
  | { kind: 'ebml'; bytes: Buffer; docType: string }
  /** A Segment started; its level-1 children follow as events. */
  | { kind: 'segment'; unknownSize: boolean }
  /** A whole level-1 element from HEADER_ELEMENT_IDS (Info, Tracks, Tags, Chapters, Attachments). */
  | { kind: 'element'; id: number; bytes: Buffer }
  /** A whole Cluster, exactly as received (an unknown-size one keeps its unknown size). */
  | { kind: 'cluster'; bytes: Buffer };

export interface ScannerOptions {
  /** Largest EBML header or header element held whole, in bytes (ID and size included). Default 16 MiB. */
  maxElementSize?: number;
  /** Largest Cluster held whole, in bytes (ID and size included). Default 64 MiB. */
  maxClusterSize?: number;
}

const DEFAULT_MAX_ELEMENT_SIZE = 16 * 1024 * 1024;
const DEFAULT_MAX_CLUSTER_SIZE = 64 * 1024 * 1024;
const INITIAL_CAPACITY = 256 * 1024;
const DOC_TYPES: ReadonlySet<string> = new Set(['matroska', 'webm']);

/**
 * Where the scanner stands.
 * - top:     between top-level elements; a stream is EBML Documents back to back (RFC 8794 §8, §9)
 * - level1:  inside a Segment, before a level-1 element (RFC 9559 §5.1)
 * - whole:   holding a known-size element until all of it is here, then emitting it
 * - skip:    streaming past a known-size element that is dropped (SeekHead, Cues, Void, …)
 * - cluster: walking the children of an unknown-size Cluster to find where it ends
 * - ended:   end() was called
 */
type State = 'top' | 'level1' | 'whole' | 'skip' | 'cluster' | 'ended';

/** An element's ID and data size, read from its first bytes. */
interface ElementHeader {
  id: number;
  /** Data size in bytes, or UNKNOWN_SIZE. */
  size: number;
  /** Bytes taken by the ID and the size together. */
  length: number;
}

export class MatroskaScanner {
  readonly #maxElementSize: number;
  readonly #maxClusterSize: number;
  readonly #window = new ByteWindow();
  #state: State = 'top';
  #error: unknown = undefined;
  #sawEbmlHeader = false;

  // The element in progress (states whole, skip, cluster), as stream offsets.
  #elementId = 0;
  #elementStart = 0;
  #bodyStart = 0;
  /** End of a known-size element; in an unknown-size Cluster, where its next child starts. */
  #elementEnd = 0;
  /** State to return to once the element is done: 'top' or 'level1'. */
  #after: State = 'top';

  // The Segment in progress.
  #segmentStart = 0;
  /** Stream offset where a known-size Segment ends; -1 when its size is unknown. */
  #segmentEnd = -1;

  constructor(options: ScannerOptions = {}) {
    this.#maxElementSize = options.maxElementSize ?? DEFAULT_MAX_ELEMENT_SIZE;
    this.#maxClusterSize = options.maxClusterSize ?? DEFAULT_MAX_CLUSTER_SIZE;
  }

  /** Total bytes pushed. */
  get bytesIn(): number {
    return this.#window.end;
  }

  /** Feeds bytes; returns the events they complete. After a throw every call throws that error. */
  push(chunk: Buffer): ScanEvent[] {
    if (this.#error !== undefined) throw this.#error;
    if (this.#state === 'ended') throw new Error('MatroskaScanner: push() after end()');
    const out: ScanEvent[] = [];
    try {
      this.#window.append(this.#skipDirect(chunk));
      this.#run(out);
    } catch (err) {
      this.#error = err;
      throw err;
    }
    return out;
  }

  /**
   * End of input. An unknown-size Cluster or Segment in progress ends here
   * (RFC 8794 §6.2); anything else cut short is a TruncatedStreamError.
   */
  end(): ScanEvent[] {
    if (this.#error !== undefined) throw this.#error;
    if (this.#state === 'ended') return [];
    const out: ScanEvent[] = [];
    try {
      if (this.#state === 'cluster') this.#closeClusterAtEnd(out);
      this.#checkNothingCut();
    } catch (err) {
      this.#error = err;
      throw err;
    }
    this.#state = 'ended';
    return out;
  }

  /** Runs states until one needs more bytes. */
  #run(out: ScanEvent[]): void {
    let progressed = true;
    while (progressed) {
      switch (this.#state) {
        case 'top':
          progressed = this.#readTopLevel(out);
          break;
        case 'level1':
          progressed = this.#readLevel1();
          break;
        case 'whole':
          progressed = this.#emitWhole(out);
          break;
        case 'skip':
          progressed = this.#skip();
          break;
        case 'cluster':
          progressed = this.#walkCluster(out);
          break;
        case 'ended':
          progressed = false;
          break;
      }
    }
  }

  // ---- top level ------------------------------------------------------------

  /** Top level: an EBML header, a Segment, or a known-size element to skip. */
  #readTopLevel(out: ScanEvent[]): boolean {
    const at = this.#window.start;
    if (!this.#sawEbmlHeader) this.#checkStartsWithEbml(at);
    const header = this.#readHeader(at, 'at top level');
    if (header === undefined) return false;
    if (header.id === EBML_ID.EBML) {
      // Only elements whose schema allows it may have an unknown size (RFC 8794 §6.2); EBML may not.
      if (header.size === UNKNOWN_SIZE) throw unknownSizeError(header.id, at, 'at top level');
      this.#beginWhole(header, at, this.#maxElementSize, 'top');
    } else if (header.id === MKV_ID.Segment) {
      this.#beginSegment(header, at, out);
    } else {
      this.#beginSkip(header, at, 'top', 'at top level');
    }
    return true;
  }

  /** A stream starts with an EBML header (RFC 8794 §8.1); say so plainly when it does not. */
  #checkStartsWithEbml(at: number): void {
    const window = this.#window;
    const id = readId(window.bytes, window.index(at), window.index(window.end));
    // NEED_MORE: wait; an invalid ID or any other ID: not ours.
    const mayBeEbml = typeof id === 'number' ? id !== CORRUPT : id.value === EBML_ID.EBML;
    if (!mayBeEbml) {
      throw new CorruptStreamError(`not a Matroska/WebM stream (no EBML header; it starts with ${window.hexAt(at)})`);
    }
  }

  #beginSegment(header: ElementHeader, at: number, out: ScanEvent[]): void {
    const bodyStart = at + header.length;
    const unknownSize = header.size === UNKNOWN_SIZE;
    this.#segmentStart = at;
    this.#segmentEnd = unknownSize ? -1 : bodyStart + header.size;
    this.#window.consume(bodyStart);
    this.#state = 'level1';
    out.push({ kind: 'segment', unknownSize });
  }

  // ---- inside a Segment -----------------------------------------------------

  /** Level 1: a Cluster, a header element, something to skip, or the Segment's end. */
  #readLevel1(): boolean {
    const at = this.#window.start;
    if (at === this.#segmentEnd) {
      this.#state = 'top';
      return true;
    }
    const header = this.#readHeader(at, 'in a Segment');
    if (header === undefined) return false;
    if (header.id === EBML_ID.EBML || header.id === MKV_ID.Segment) {
      this.#endSegmentBefore(header, at);
      return true;
    }
    this.#checkFitsSegment(header, at);
    if (header.id === MKV_ID.Cluster) {
      this.#beginCluster(header, at);
    } else if (HEADER_ELEMENT_IDS.has(header.id)) {
      if (header.size === UNKNOWN_SIZE) throw unknownSizeError(header.id, at, 'in a Segment');
      this.#beginWhole(header, at, this.#maxElementSize, 'level1');
    } else {
      this.#beginSkip(header, at, 'level1', 'in a Segment');
    }
    return true;
  }

  /**
   * A top-level ID inside a Segment ends an unknown-size Segment (RFC 8794
   * §6.2); with an EBML header a new stream begins. A known-size Segment
   * cannot hold one.
   */
  #endSegmentBefore(header: ElementHeader, at: number): void {
    if (this.#segmentEnd !== -1) {
      throw new CorruptStreamError(
        `${nameOf(header.id)} at byte ${at} inside the Segment at byte ${this.#segmentStart}, ` +
          `which runs to byte ${this.#segmentEnd}`,
      );
    }
    this.#state = 'top';
  }

  /** A child of a known-size Segment must end inside it. */
  #checkFitsSegment(header: ElementHeader, at: number): void {
    if (this.#segmentEnd === -1 || header.size === UNKNOWN_SIZE) return;
    const end = at + header.length + header.size;
    if (end > this.#segmentEnd) {
      throw new CorruptStreamError(
        `${nameOf(header.id)} at byte ${at} runs to byte ${end}, past the end of its Segment at byte ${this.#segmentEnd}`,
      );
    }
  }

  #beginCluster(header: ElementHeader, at: number): void {
    if (header.size !== UNKNOWN_SIZE) {
      this.#beginWhole(header, at, this.#maxClusterSize, 'level1');
      return;
    }
    // Unknown size, as live muxers write it (RFC 9559 §5.1.3 allows it): walk its children.
    this.#elementId = header.id;
    this.#elementStart = at;
    this.#elementEnd = at + header.length;
    this.#state = 'cluster';
  }

  /**
   * Walks an unknown-size Cluster's children from where the last walk
   * stopped, skipping their bodies. The Cluster ends before the first ID
   * that may stand at level 1 or top level, or at the end of a known-size
   * Segment (RFC 8794 §6.2).
   */
  #walkCluster(out: ScanEvent[]): boolean {
    const start = this.#elementStart;
    for (;;) {
      const at = this.#elementEnd;
      // At the Segment's end only once the last child's bytes are all here.
      if (at === this.#segmentEnd && at <= this.#window.end) return this.#closeCluster(at, out);
      if (at >= this.#window.end) return false;
      const child = this.#readHeader(at, `in the Cluster at byte ${start}`);
      if (child === undefined) return false;
      if (LEVEL1_IDS.has(child.id)) return this.#closeCluster(at, out);
      // In Matroska only Segment and Cluster may have an unknown size (RFC 9559 §5.1, §5.1.3).
      if (child.size === UNKNOWN_SIZE) throw unknownSizeError(child.id, at, `in the Cluster at byte ${start}`);
      this.#checkFitsSegment(child, at);
      this.#elementEnd = at + child.length + child.size;
      const held = this.#elementEnd - start;
      if (held > this.#maxClusterSize) {
        throw new ElementTooLargeError(`Cluster of unknown size at byte ${start}`, held, this.#maxClusterSize);
      }
    }
  }

  #closeCluster(end: number, out: ScanEvent[]): boolean {
    out.push({ kind: 'cluster', bytes: this.#window.copy(this.#elementStart, end) });
    this.#window.consume(end);
    this.#state = 'level1';
    return true;
  }

  /** At end of input an unknown-size Cluster ends, if its last child is whole. */
  #closeClusterAtEnd(out: ScanEvent[]): void {
    const end = this.#window.end;
    const next = this.#elementEnd;
    if (next === end) {
      this.#closeCluster(end, out);
      return;
    }
    const where = `stream ended at byte ${end} inside the Cluster of unknown size at byte ${this.#elementStart}`;
    const what = next > end ? `its last child runs to byte ${next}` : `the ID or size of its child at byte ${next} is cut`;
    throw new TruncatedStreamError(`${where}: ${what}`);
  }

  // ---- whole elements and skipped ones ----------------------------------------

  #beginWhole(header: ElementHeader, at: number, limit: number, after: State): void {
    const total = header.length + header.size;
    // Refused at once: it could never fit. Nothing is ever allocated by this size.
    if (total > limit) throw new ElementTooLargeError(`${nameOf(header.id)} at byte ${at}`, total, limit);
    this.#elementId = header.id;
    this.#elementStart = at;
    this.#bodyStart = at + header.length;
    this.#elementEnd = at + total;
    this.#after = after;
    this.#state = 'whole';
  }

  /** Emits the element once all its bytes are here. */
  #emitWhole(out: ScanEvent[]): boolean {
    if (this.#window.end < this.#elementEnd) return false;
    const bytes = this.#window.copy(this.#elementStart, this.#elementEnd);
    this.#window.consume(this.#elementEnd);
    this.#state = this.#after;
    const id = this.#elementId;
    if (id === EBML_ID.EBML) {
      const docType = checkedDocType(bytes, this.#bodyStart - this.#elementStart, this.#elementStart);
      this.#sawEbmlHeader = true;
      out.push({ kind: 'ebml', bytes, docType });
    } else if (id === MKV_ID.Cluster) {
      out.push({ kind: 'cluster', bytes });
    } else {
      out.push({ kind: 'element', id, bytes });
    }
    return true;
  }

  #beginSkip(header: ElementHeader, at: number, after: State, where: string): void {
    if (header.size === UNKNOWN_SIZE) throw unknownSizeError(header.id, at, where);
    this.#elementId = header.id;
    this.#elementStart = at;
    this.#elementEnd = at + header.length + header.size;
    this.#after = after;
    this.#state = 'skip';
  }

  /** Drops whatever is buffered of a skipped element. */
  #skip(): boolean {
    const to = Math.min(this.#elementEnd, this.#window.end);
    this.#window.consume(to);
    if (to < this.#elementEnd) return false;
    this.#state = this.#after;
    return true;
  }

  /** While skipping with nothing buffered, the chunk's share of the element is never copied in. */
  #skipDirect(chunk: Buffer): Buffer {
    const window = this.#window;
    if (this.#state !== 'skip' || window.start !== window.end) return chunk;
    const n = Math.min(this.#elementEnd - window.start, chunk.length);
    window.passOver(n);
    return chunk.subarray(n);
  }

  // ---- helpers ------------------------------------------------------------------

  /** Reads the ID and size at `at`: undefined until their bytes are here; throws on invalid ones. */
  #readHeader(at: number, where: string): ElementHeader | undefined {
    const window = this.#window;
    const pos = window.index(at);
    const end = window.index(window.end);
    const id = readId(window.bytes, pos, end);
    if (typeof id === 'number') {
      if (id === CORRUPT) {
        throw new CorruptStreamError(`invalid element ID at byte ${at} ${where} (${window.hexAt(at)})`);
      }
      return undefined;
    }
    const size = readSize(window.bytes, pos + id.length, end);
    if (typeof size === 'number') {
      if (size === CORRUPT) throw new CorruptStreamError(`invalid size of ${nameOf(id.value)} at byte ${at} ${where}`);
      return undefined;
    }
    return { id: id.value, size: size.value, length: id.length + size.length };
  }

  /** At end(): throws if the input stopped inside an element (the unknown-size cases are settled). */
  #checkNothingCut(): void {
    const start = this.#window.start;
    const end = this.#window.end;
    if (this.#state === 'whole' || this.#state === 'skip') {
      throw new TruncatedStreamError(
        `stream ended inside ${nameOf(this.#elementId)} at byte ${this.#elementStart}: ` +
          `got ${end - this.#elementStart} of its ${this.#elementEnd - this.#elementStart} bytes`,
      );
    }
    if (start < end) {
      throw new TruncatedStreamError(`stream ended inside the ID or size of an element at byte ${start}`);
    }
    if (!this.#sawEbmlHeader) throw new TruncatedStreamError(`stream ended after ${end} bytes, before any EBML header`);
    if (this.#state === 'level1' && this.#segmentEnd !== -1) {
      throw new TruncatedStreamError(
        `stream ended at byte ${end} inside the Segment at byte ${this.#segmentStart}, ` +
          `which runs to byte ${this.#segmentEnd}`,
      );
    }
  }
}

/**
 * One contiguous buffer holding the stream bytes not yet consumed. Positions
 * are stream offsets; index() maps one into `bytes`. When the tail is full
 * the live bytes move to the front, or to a buffer twice as large when they
 * fill half of it, so each byte moves O(1) times on average.
 */
class ByteWindow {
  bytes: Buffer = Buffer.allocUnsafeSlow(INITIAL_CAPACITY);
  /** Stream offset of the first byte still needed. */
  start = 0;
  /** Stream offset just past the last byte received. */
  end = 0;
  /** Stream offset of bytes[0]. */
  #base = 0;

  index(offset: number): number {
    return offset - this.#base;
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.start === this.end) this.#base = this.start; // empty: write from the front
    if (this.index(this.end) + chunk.length > this.bytes.length) this.#makeRoom(chunk.length);
    chunk.copy(this.bytes, this.index(this.end));
    this.end += chunk.length;
  }

  /** Bytes before `offset` are no longer needed. */
  consume(offset: number): void {
    this.start = offset;
  }

  /** Counts `n` bytes that went by without being held; only while empty. */
  passOver(n: number): void {
    this.start += n;
    this.end += n;
    this.#base = this.start;
  }

  /** A copy of [from, to) in an ArrayBuffer of its own: safe from later moves, transferable. */
  copy(from: number, to: number): Buffer {
    const out = Buffer.allocUnsafeSlow(to - from);
    this.bytes.copy(out, 0, this.index(from), this.index(to));
    return out;
  }

  /** Up to 4 held bytes from `offset` in hex, for error messages. */
  hexAt(offset: number): string {
    const bytes = this.bytes.subarray(this.index(offset), this.index(Math.min(offset + 4, this.end)));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  }

  #makeRoom(incoming: number): void {
    const live = this.end - this.start;
    const needed = live + incoming;
    const capacity = this.bytes.length;
    let target = capacity;
    if (needed > capacity >> 1) {
      target = capacity * 2;
      while (target < needed * 2) target *= 2;
    } else if (capacity > INITIAL_CAPACITY && needed * 8 <= capacity) {
      target = capacity >> 1; // give memory back after a large element
    }
    const from = this.index(this.start);
    if (target === capacity) {
      this.bytes.copyWithin(0, from, from + live);
    } else {
      const next = Buffer.allocUnsafeSlow(target);
      this.bytes.copy(next, 0, from, from + live);
      this.bytes = next;
    }
    this.#base = this.start;
  }
}

/** The EBML header's DocType, which must name Matroska or its WebM profile. */
function checkedDocType(element: Buffer, bodyStart: number, at: number): string {
  const docType = readDocType(element, bodyStart, at);
  if (!DOC_TYPES.has(docType)) {
    throw new CorruptStreamError(
      `unsupported DocType '${docType}' in the EBML header at byte ${at} (expected 'matroska' or 'webm')`,
    );
  }
  return docType;
}

/**
 * Finds DocType (0x4282, RFC 8794 §11.2) among the EBML header's children.
 * A String may end in zero-byte padding (RFC 8794 §7.4).
 */
function readDocType(element: Buffer, bodyStart: number, at: number): string {
  let pos = bodyStart;
  while (pos < element.length) {
    const id = readId(element, pos);
    const size = typeof id === 'number' ? id : readSize(element, pos + id.length);
    if (typeof id === 'number' || typeof size === 'number' || size.value === UNKNOWN_SIZE) {
      throw new CorruptStreamError(`malformed child at byte ${at + pos} of the EBML header at byte ${at}`);
    }
    const body = pos + id.length + size.length;
    if (body + size.value > element.length) {
      throw new CorruptStreamError(`child at byte ${at + pos} overruns the EBML header at byte ${at}`);
    }
    if (id.value === EBML_ID.DocType) return element.toString('latin1', body, body + size.value).replace(/\0+$/, '');
    pos = body + size.value;
  }
  throw new CorruptStreamError(`the EBML header at byte ${at} has no DocType`);
}

function unknownSizeError(id: number, at: number, where: string): CorruptStreamError {
  return new CorruptStreamError(
    `${nameOf(id)} at byte ${at} ${where} has an unknown size, which only a Segment or Cluster may have`,
  );
}

const NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [EBML_ID.EBML, 'EBML header'],
  [EBML_ID.Void, 'Void'],
  [EBML_ID.CRC32, 'CRC-32'],
  [MKV_ID.Segment, 'Segment'],
  [MKV_ID.SeekHead, 'SeekHead'],
  [MKV_ID.Info, 'Info'],
  [MKV_ID.Tracks, 'Tracks'],
  [MKV_ID.Cluster, 'Cluster'],
  [MKV_ID.Cues, 'Cues'],
  [MKV_ID.Chapters, 'Chapters'],
  [MKV_ID.Tags, 'Tags'],
  [MKV_ID.Attachments, 'Attachments'],
]);

function nameOf(id: number): string {
  return NAMES.get(id) ?? `element 0x${id.toString(16).toUpperCase()}`;
}
