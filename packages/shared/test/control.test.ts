import assert from 'node:assert/strict';
import { test } from 'node:test';
import { whenChanged } from '../src/protocol/control.js';

test('whenChanged sends a message only when it differs from the last one sent', () => {
  const sent: object[] = [];
  const send = whenChanged((m: object) => sent.push(m));
  send({ players: 0 });
  send({ players: 0 });
  send({ players: 1 });
  send({ players: 1 });
  send({ players: 0 });
  assert.deepEqual(sent, [{ players: 0 }, { players: 1 }, { players: 0 }]);
});

test('whenChanged compares by the key it is given', () => {
  const sent: { uptimeS: number; players: number }[] = [];
  const send = whenChanged((m: { uptimeS: number; players: number }) => sent.push(m), (m) => String(m.players));
  send({ uptimeS: 1, players: 0 });
  send({ uptimeS: 2, players: 0 });
  send({ uptimeS: 3, players: 2 });
  assert.deepEqual(sent.map((m) => m.uptimeS), [1, 3]);
});
