export { main, parseOptions, OPTIONS, NUMBER_RULES, VERSION } from './cli.js';
export { Master, type MasterOptions, type ReloadResult } from './master.js';
export { ConfigError, keyOf, parseConfig, readConfigFile, type ConfigFile, type StreamSection } from './configFile.js';
export { diffOptions, RESTART_ONLY, type ReloadDone, type ReloadRefused } from './reload.js';
