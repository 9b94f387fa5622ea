export { main, parseOptions } from './cli.js';
export { Master, type MasterOptions } from './master.js';
