#!/usr/bin/env node
// Entry point: the compiled CLI (npm install builds dist/).
import { main } from '../dist/src/cli/main.js';

await main(process.argv);
