#!/usr/bin/env node
// Updraft's command line. TypeScript (ours and the DAG files') loads directly, no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
