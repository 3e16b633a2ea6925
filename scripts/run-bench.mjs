#!/usr/bin/env node
// `npm run bench -- <name> [args]` runs bench/<name>.ts (or bench/<name>/main.ts). Each benchmark prints one
// JSON line last: {"bench":name,"ours":..,"reference":..,"unit":..,"ratio":..}, ratio > 1 meaning we are faster.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') || existsSync(join(root, 'bench', f, 'main.ts')))
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((f) => !f.startsWith('_'));
if (!name || !available.includes(name)) {
  console.error(
    `run-bench: ${name ? `unknown benchmark '${name}'` : 'no benchmark named'}; available: ${available.join(', ')}`,
  );
  process.exit(2);
}
const file = existsSync(join(root, 'bench', `${name}.ts`))
  ? join('bench', `${name}.ts`)
  : join('bench', name, 'main.ts');
const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...rest], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
