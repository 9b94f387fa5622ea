import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timeline } from '../src/timeline.js';

const VIDEO = 1;
const AUDIO = 2;
/** Video DefaultDuration 40 ticks; audio has none (its frame step is measured). */
const FRAME_TICKS = new Map([[VIDEO, 40]]);

/** One pass like ffmpeg's VP8/Opus WebM: audio at 0, 20, …, 200 (ends at 220), video at 7, 47, …, 167 (ends at 207). */
function pass(timeline: Timeline, order: 'audio-first' | 'video-first'): number[] {
  timeline.beginPass(FRAME_TICKS);
  const blocks: Array<[number, number]> = [];
  for (let t = 0; t <= 200; t += 20) blocks.push([AUDIO, t]);
  for (let t = 7; t <= 167; t += 40) blocks.push([VIDEO, t]);
  blocks.sort((a, b) => a[1] - b[1] || (order === 'video-first' ? a[0] - b[0] : b[0] - a[0]));
  if (order === 'video-first') blocks.unshift(...blocks.splice(blocks.findIndex(([track]) => track === VIDEO), 1));
  const offsets: number[] = [];
  for (const [track, time] of blocks) {
    offsets.push(timeline.offsetFor(track, time, 0));
    timeline.note(track, time, 1, -1);
  }
  return [...new Set(offsets)];
}

test('the first pass keeps the input\'s timestamps', () => {
  assert.deepEqual(pass(new Timeline(), 'audio-first'), [0]);
});

test('a seam: the track that ended last (audio, 220) goes on at once', () => {
  const timeline = new Timeline();
  pass(timeline, 'audio-first');
  assert.deepEqual(pass(timeline, 'audio-first'), [220]);
  assert.deepEqual(pass(timeline, 'audio-first'), [440]);
});

test('a seam whose first block is video: audio is expected 7 ticks before it, as in the pass before', () => {
  const timeline = new Timeline();
  pass(timeline, 'audio-first');
  // Taken at its own time, the video block (7) would give 220 - 7 = 213, and audio at 0 would step back to 213.
  assert.deepEqual(pass(timeline, 'video-first'), [220]);
});

test('BlockDuration and laced frames set where a track ends', () => {
  const timeline = new Timeline();
  timeline.beginPass(FRAME_TICKS);
  timeline.offsetFor(VIDEO, 0, 0);
  assert.equal(timeline.note(VIDEO, 0, 1, -1), 40, 'DefaultDuration');
  assert.equal(timeline.note(VIDEO, 40, 3, -1), 160, '3 laced frames of 40');
  assert.equal(timeline.note(VIDEO, 160, 1, 100), 260, 'BlockDuration first');
  assert.equal(timeline.note(AUDIO, 0, 1, -1), 0, 'no duration known yet');
  assert.equal(timeline.note(AUDIO, 30, 1, -1), 60, 'the step seen so far: 30');
  timeline.beginPass(FRAME_TICKS);
  assert.equal(timeline.offsetFor(VIDEO, 0, 0), 260);
});

test('after a restart only where the media ended is known; a Cluster Timestamp never goes below 0', () => {
  const timeline = new Timeline(5000);
  timeline.beginPass(FRAME_TICKS);
  assert.equal(timeline.offsetFor(AUDIO, 100, 100), 4900);
  const early = new Timeline(10);
  early.beginPass(FRAME_TICKS);
  // A block at 500 in a Cluster at 400: 10 - 500 would write the Cluster at -90.
  assert.equal(early.offsetFor(AUDIO, 500, 400), -400);
});

/**
 * Feeds one pass of [track, input time] blocks; returns each block's output
 * time, or null where the timeline says it went out already.
 */
function feed(timeline: Timeline, blocks: Array<[number, number]>): Array<number | null> {
  timeline.beginPass(FRAME_TICKS, 1000);
  return blocks.map(([track, time]) => {
    const offset = timeline.offsetFor(track, time, time);
    if (timeline.delivered(track, time)) return null;
    timeline.note(track, time, 1, -1);
    return time + offset;
  });
}

/** Audio every 20 ticks, video every 40 (from 7), from `from` to `to`, in time order. */
function av(from: number, to: number): Array<[number, number]> {
  const blocks: Array<[number, number]> = [];
  for (let t = from - (from % 20); t <= to; t += 20) if (t >= from) blocks.push([AUDIO, t]);
  for (let t = 7 + Math.ceil((from - 7) / 40) * 40; t <= to; t += 40) blocks.push([VIDEO, t]);
  return blocks.sort((a, b) => a[1] - b[1] || b[0] - a[0]);
}

test('an upstream back on the same timeline (from an earlier keyframe): the offset is kept, the replayed blocks are dropped', () => {
  const timeline = new Timeline();
  feed(timeline, av(0, 200)); // audio ends at 220, video (167 + 40) at 207
  // The origin starts its new puller at its newest keyframe, 127: before where this one's media ended.
  const blocks = av(127, 300);
  const out = feed(timeline, blocks);
  assert.equal(timeline.offset, 0, 'no rebasing');
  const kept = blocks.filter((_, i) => out[i] !== null);
  const dropped = blocks.filter((_, i) => out[i] === null);
  assert.deepEqual(dropped, [[VIDEO, 127], [AUDIO, 140], [AUDIO, 160], [VIDEO, 167], [AUDIO, 180], [AUDIO, 200]]);
  assert.deepEqual(kept.slice(0, 3), [[VIDEO, 207], [AUDIO, 220], [AUDIO, 240]], 'each track goes on from where it ended');
  assert.deepEqual(out.filter((t) => t !== null), kept.map(([, t]) => t), 'output times are the input\'s');
});

test('a fail-over to an origin ahead by 5 s on the same timeline: the offset is kept, nothing is dropped, the hole stays', () => {
  const timeline = new Timeline();
  feed(timeline, av(0, 200));
  const blocks = av(5207, 5400);
  const out = feed(timeline, blocks);
  assert.equal(timeline.offset, 0);
  assert.deepEqual(out, blocks.map(([, t]) => t));
});

test('the same rule at every seam: two fail-overs keep the input\'s timestamps', () => {
  const timeline = new Timeline();
  feed(timeline, av(0, 2000));
  feed(timeline, av(1527, 4000));
  const out = feed(timeline, av(3927, 6000));
  assert.equal(timeline.offset, 0);
  assert.equal(out.find((t) => t !== null), 4007, 'video 3967 went out already; 4007 is the next');
});

test('a new timeline is rebased as before: a publisher from 0 after 5 s, an input 31 s ahead, or 16 s behind', () => {
  // Starts where the last pass started: a restart, not a continuation, however near.
  const restart = new Timeline();
  feed(restart, av(0, 4980));
  assert.deepEqual(feed(restart, av(0, 200))[0], 5000, 'audio at 0 goes on at 5000, where audio ended');
  const ahead = new Timeline();
  feed(ahead, av(0, 200));
  assert.equal(feed(ahead, av(31_220, 31_400))[0], 220, 'beyond 30 s ahead: placed where the media ended');
  const behind = new Timeline();
  feed(behind, av(0, 40_000));
  assert.equal(feed(behind, av(24_000, 24_400))[0], 40_020, 'more than 15 s behind: placed where the media ended');
  const near = new Timeline();
  feed(near, av(0, 40_000));
  assert.equal(near.offset, 0);
  assert.equal(feed(near, av(26_000, 40_400)).find((t) => t !== null), 40_007, '14 s behind: the same timeline (video ended at 39 967 + 40)');
  assert.equal(near.offset, 0);
});

test('the window is in seconds, whatever the TimestampScale (0.1 ms ticks)', () => {
  const timeline = new Timeline();
  timeline.beginPass(FRAME_TICKS, 10_000);
  for (let t = 0; t <= 200_000; t += 200) {
    timeline.offsetFor(AUDIO, t, t);
    timeline.note(AUDIO, t, 1, -1);
  }
  timeline.beginPass(FRAME_TICKS, 10_000);
  // 25 s ahead in 0.1 ms ticks: 250 000 ticks, which in ms would be past the window.
  assert.equal(timeline.offsetFor(AUDIO, 450_200, 450_200), 0);
  assert.equal(timeline.delivered(AUDIO, 450_200), false);
});

test('a restarted source whose upstream serves the same timestamps keeps the last run\'s offset; what it replays up to the promised end is dropped', () => {
  // The last run: offset 300 (it had rebased once), its pass started at output 1300, media promised to end by 9000.
  const timeline = new Timeline(9000, { offset: 300, passStart: 1300 });
  // The origin starts the new run at its newest keyframe, input 8167 (output 8467): before the promise.
  const out = feed(timeline, av(8167, 8900));
  assert.equal(timeline.offset, 300, 'the last run\'s offset');
  const kept = out.filter((t) => t !== null);
  assert.ok(kept.length > 0 && kept.every((t) => t >= 9000), `only blocks from the promised end on: ${kept.join(', ')}`);
  assert.equal(kept[0], 9000, 'audio 8700 + 300: the first at or past 9000');
});

test('a restarted source whose input starts again where the last run\'s pass started is rebased, as before', () => {
  const timeline = new Timeline(5000, { offset: 0, passStart: 0 });
  assert.equal(feed(timeline, av(0, 200))[0], 5000, 'a publisher from 0: placed where the promise ends');
  const file = new Timeline(5000);
  assert.equal(feed(file, av(4000, 4200))[0], 5000, 'no timeline in the checkpoint (a file): placed where the promise ends');
});
