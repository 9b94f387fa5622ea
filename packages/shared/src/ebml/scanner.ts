/**
 * Frames a Matroska/WebM byte stream into the pieces a live server moves
 * around: the EBML header, Segment starts, whole header elements (Info,
 * Tracks, …), and each Cluster as its Timestamp, then each of its children as
 * soon as that child is whole, then its end. A live muxer's Cluster may stay
 * open for seconds (or, with an unknown size, until the next one starts):
 * nothing here waits for it to close. It finds boundaries and copies bytes
 * out; it decodes nothing inside them but the Cluster Timestamp.
 *
 * Incremental: push() bytes as they arrive, end() at end of input. An
 * explicit state machine over one growable buffer: each state returns when it
 * runs out of bytes and resumes where it stopped, so no byte is walked twice
 * however the input is chunked. Declared sizes are checked against limits but
 * never used to allocate.
 */
import { CorruptStreamError, ElementTooLargeError, StateError, TruncatedStreamError } from '../errors.js';
import { EBML_ID, HEADER_ELEMENT_IDS, LEVEL1_IDS, MKV_ID } from './ids.js';
import { CORRUPT, UNKNOWN_SIZE, readId, readSize, readUint } from './vint.js';

export type ScanEvent =
  /** The whole EBML header element (ID, size, body) and its DocType. */
  | { kind: 'ebml'; bytes: Buffer; docType: string }
  /** A Segment started; its level-1 children follow as events. */
  | { kind: 'segment'; unknownSize: boolean }
  /** A whole level-1 element from HEADER_ELEMENT_IDS (Info, Tracks, Tags, Chapters, Attachments). */
  | { kind: 'element'; id: number; bytes: Buffer }
  /**
   * A Cluster began: its Timestamp (RFC 9559 §5.1.3.1) is here. `offset` is
   * the stream offset of the Cluster's first byte. Children that came before
   * the Timestamp follow as 'cluster-child' events.
   */
  | { kind: 'cluster-start'; offset: number; timestamp: number }
  /**
   * One whole child of the current Cluster (SimpleBlock, BlockGroup, Void, …;
   * never its Timestamp), exactly as received: ID, size and body. A copy,
   * which may share Node's pooled slab with others; with `viewChildren`, a
   * view of the scanner's buffer, valid until the next push() or end().
   */
  | { kind: 'cluster-child'; id: number; bytes: Buffer }
  /** The current Cluster ended: by its size, before a level-1 element, at the Segment's end, or at end(). */
  | { kind: 'cluster-end' };

export interface ScannerOptions {
  /** Largest EBML header or header element held whole, in bytes (ID and size included). Default 16 MiB. */
  maxElementSize?: number;
  /**
   * Largest Cluster child (a SimpleBlock, a BlockGroup, …) held whole, in
   * bytes (ID and size included); also bounds what is held of a Cluster while
   * its Timestamp has not come. Default 64 MiB.
   */
  maxChildSize?: number;
  /**
   * Cluster children as views of the scanner's own buffer, not copies: for a
   * caller that is done with them before it pushes again (the source copies
   * each block once more, into the piece it goes out in). Default false.
   */
  viewChildren?: boolean;
}

const DEFAULT_MAX_ELEMENT_SIZE = 16 * 1024 * 1024;
const DEFAULT_MAX_CHILD_SIZE = 64 * 1024 * 1024;
const INITIAL_CAPACITY = 256 * 1024;
const DOC_TYPES: ReadonlySet<string> = new Set(['matroska', 'webm']);

/**
 * Where the scanner stands.
 * - top:     between top-level elements; a stream is EBML Documents back to back (RFC 8794 §8, §9)
 * - level1:  inside a Segment, before a level-1 element (RFC 9559 §5.1)
 * - whole:   holding a known-size element until all of it is here, then emitting it
 * - skip:    streaming past a known-size element that is dropped (SeekHead, Cues, Void, …)
 * - cluster: inside a Cluster, emitting each child once it is whole, until the Cluster ends
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
  readonly #maxChildSize: number;
  readonly #window = new ByteWindow();
  #state: State = 'top';
  #error: unknown = undefined;
  #sawEbmlHeader = false;

  // The element in progress (states whole, skip), as stream offsets.
  #elementId = 0;
  #elementStart = 0;
  #bodyStart = 0;
  #elementEnd = 0;
  /** State to return to once the element is done: 'top' or 'level1'. */
  #after: State = 'top';

  // The Segment in progress.
  #segmentStart = 0;
  /** Stream offset where a known-size Segment ends; -1 when its size is unknown. */
  #segmentEnd = -1;

  // The Cluster in progress (state cluster), as stream offsets.
  #clusterStart = 0;
  #clusterBody = 0;
  /** Where a known-size Cluster ends; -1 when its size is unknown. */
  #clusterEnd = -1;
  /** Its Timestamp; -1 until it comes (the children before it are held until then). */
  #timestamp = -1;
  /** Where the next child's ID is expected. */
  #cursor = 0;
  /** The child being received: its ID, start and end; #childEnd is -1 between children. */
  #childId = 0;
  #childStart = 0;
  #childEnd = -1;
  readonly #viewChildren: boolean;

  constructor(options: ScannerOptions = {}) {
    this.#maxElementSize = options.maxElementSize ?? DEFAULT_MAX_ELEMENT_SIZE;
    this.#maxChildSize = options.maxChildSize ?? DEFAULT_MAX_CHILD_SIZE;
    this.#viewChildren = options.viewChildren ?? false;
  }

  /** Total bytes pushed. */
  get bytesIn(): number {
    return this.#window.end;
  }

  /** Bytes received and still held: not yet emitted, skipped or dropped. */
  get bytesHeld(): number {
    return this.#window.end - this.#window.start;
  }

  /** Feeds bytes; returns the events they complete. After a throw every call throws that error. */
  push(chunk: Buffer): ScanEvent[] {
    if (this.#error !== undefined) throw this.#error;
    if (this.#state === 'ended') throw new StateError('MatroskaScanner: push() after end()');
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
    // Unknown size is allowed for a Cluster (RFC 9559 §5.1.3): live muxers write it.
    const body = at + header.length;
    this.#clusterStart = at;
    this.#clusterBody = body;
    this.#clusterEnd = header.size === UNKNOWN_SIZE ? -1 : body + header.size;
    this.#timestamp = -1;
    this.#cursor = body;
    this.#childEnd = -1;
    this.#window.consume(body);
    this.#state = 'cluster';
  }

  /**
   * Walks the Cluster's children from where the last walk stopped, emitting
   * each once all its bytes are here; only the child in progress is held. A
   * known-size Cluster ends at its size; an unknown-size one before the first
   * ID that may stand at level 1 or top level, or at the end of a known-size
   * Segment (RFC 8794 §6.2).
   */
  #walkCluster(out: ScanEvent[]): boolean {
    for (;;) {
      if (this.#childEnd !== -1) {
        if (this.#window.end < this.#childEnd) return false;
        this.#takeChild(out);
        continue;
      }
      const at = this.#cursor;
      if (at === this.#clusterEnd || at === this.#segmentEnd) return this.#closeCluster(at, out);
      if (at >= this.#window.end) return false;
      const child = this.#readHeader(at, `in the Cluster at byte ${this.#clusterStart}`);
      if (child === undefined) return false;
      if (LEVEL1_IDS.has(child.id)) {
        if (this.#clusterEnd === -1) return this.#closeCluster(at, out);
        throw new CorruptStreamError(
          `${nameOf(child.id)} at byte ${at} inside the Cluster at byte ${this.#clusterStart}, which runs to byte ${this.#clusterEnd}`,
        );
      }
      this.#beginChild(child, at);
    }
  }

  /** Checks a child's header against its Cluster, its Segment and the limits; nothing is allocated by its size. */
  #beginChild(child: ElementHeader, at: number): void {
    const where = `in the Cluster at byte ${this.#clusterStart}`;
    // In Matroska only Segment and Cluster may have an unknown size (RFC 9559 §5.1, §5.1.3).
    if (child.size === UNKNOWN_SIZE) throw unknownSizeError(child.id, at, where);
    this.#checkFitsSegment(child, at);
    const end = at + child.length + child.size;
    if (this.#clusterEnd !== -1 && end > this.#clusterEnd) {
      throw new CorruptStreamError(
        `${nameOf(child.id)} at byte ${at} runs to byte ${end}, past the end of its Cluster at byte ${this.#clusterEnd}`,
      );
    }
    const limit = this.#maxChildSize;
    if (end - at > limit) throw new ElementTooLargeError(`${nameOf(child.id)} at byte ${at} ${where}`, end - at, limit);
    // Children before the Timestamp are held until it comes: bounded by the same limit.
    if (this.#timestamp === -1 && end - this.#clusterBody > limit) {
      throw new ElementTooLargeError(`the children before the Timestamp of the Cluster at byte ${this.#clusterStart}`, end - this.#clusterBody, limit);
    }
    this.#childId = child.id;
    this.#childStart = at;
    this.#childEnd = end;
    this.#cursor = end;
  }

  /** A whole child: the Timestamp starts the Cluster; any other is emitted, or held while the Timestamp has not come. */
  #takeChild(out: ScanEvent[]): void {
    const start = this.#childStart;
    const end = this.#childEnd;
    this.#childEnd = -1;
    if (this.#childId === MKV_ID.Timestamp) {
      this.#timestamp = this.#readTimestamp(start, end);
      out.push({ kind: 'cluster-start', offset: this.#clusterStart, timestamp: this.#timestamp });
      this.#emitHeld(start, out);
      this.#window.consume(end);
      return;
    }
    if (this.#timestamp === -1) return; // held in the window
    out.push({ kind: 'cluster-child', id: this.#childId, bytes: this.#childBytes(start, end) });
    this.#window.consume(end);
  }

  /** The children held between the Cluster's body start and its Timestamp at `to`, read again (they were checked). */
  #emitHeld(to: number, out: ScanEvent[]): void {
    for (let at = this.#clusterBody; at < to; ) {
      const child = this.#readHeader(at, `in the Cluster at byte ${this.#clusterStart}`)!;
      const end = at + child.length + child.size;
      out.push({ kind: 'cluster-child', id: child.id, bytes: this.#childBytes(at, end) });
      at = end;
    }
  }

  #childBytes(from: number, to: number): Buffer {
    return this.#viewChildren ? this.#window.view(from, to) : this.#window.slice(from, to);
  }

  /** The Cluster Timestamp: an unsigned integer of at most 8 bytes (RFC 8794 §7.2), exactly once (RFC 9559 §5.1.3.1). */
  #readTimestamp(start: number, end: number): number {
    const where = `at byte ${start} in the Cluster at byte ${this.#clusterStart}`;
    if (this.#timestamp !== -1) throw new CorruptStreamError(`a second Timestamp ${where}`);
    const header = this.#readHeader(start, where)!;
    if (header.size > 8) throw new CorruptStreamError(`a Timestamp of ${header.size} bytes (at most 8) ${where}`);
    const value = readUint(this.#window.bytes, this.#window.index(start + header.length), header.size);
    if (value > Number.MAX_SAFE_INTEGER) throw new CorruptStreamError(`a Timestamp beyond 2^53 ${where}`);
    return value;
  }

  #closeCluster(end: number, out: ScanEvent[]): boolean {
    if (this.#timestamp === -1) {
      throw new CorruptStreamError(`the Cluster at byte ${this.#clusterStart} has no Timestamp (mandatory, RFC 9559 §5.1.3.1)`);
    }
    out.push({ kind: 'cluster-end' });
    this.#window.consume(end);
    this.#state = 'level1';
    return true;
  }

  /** At end of input an unknown-size Cluster ends, if its last child is whole; a known-size one is cut. */
  #closeClusterAtEnd(out: ScanEvent[]): void {
    const end = this.#window.end;
    const start = this.#clusterStart;
    if (this.#clusterEnd !== -1) {
      throw new TruncatedStreamError(
        `stream ended inside Cluster at byte ${start}: got ${end - start} of its ${this.#clusterEnd - start} bytes`,
      );
    }
    if (this.#childEnd === -1 && this.#cursor === end) {
      this.#closeCluster(end, out);
      return;
    }
    const where = `stream ended at byte ${end} inside the Cluster of unknown size at byte ${start}`;
    const what =
      this.#childEnd !== -1 ? `its last child runs to byte ${this.#childEnd}` : `the ID or size of its child at byte ${this.#cursor} is cut`;
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

  /** [from, to) in place: valid until the next append() (which may move the bytes). */
  view(from: number, to: number): Buffer {
    return this.bytes.subarray(this.index(from), this.index(to));
  }

  /**
   * A copy of [from, to) that may share Node's pooled slab: for the many small
   * blocks of a stream (audio frames of ~100 bytes), an ArrayBuffer each
   * halved the scanner's speed.
   */
  slice(from: number, to: number): Buffer {
    return Buffer.from(this.bytes.subarray(this.index(from), this.index(to)));
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
