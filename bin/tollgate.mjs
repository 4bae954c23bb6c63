#!/usr/bin/env node
// Entry of `npx tollgate`: loads the TypeScript sources through tsx, as `npm start` does.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
