export { Edge, type EdgeEvents } from './edge.js';
export { LiveStream } from './liveStream.js';
export { Player, type PlayerPolicy, type PlayerCounters } from './player.js';
export { DashStore, type DashLimits } from './dashStore.js';
