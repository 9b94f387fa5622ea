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
