#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';

// V8's optimizing compiler stays off until the master has started (STARTUP_V8_FLAG in
// @mkvcast/shared says why), so it is set before anything else is loaded.
setFlagsFromString('--no-turbofan');
const { main } = await import('../dist/src/cli.js');

process.exit(await main());
