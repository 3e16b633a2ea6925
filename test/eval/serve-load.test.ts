/**
 * `tlab serve` as its own process under load: 64 concurrent clients × 20 requests each all succeed, bad requests
 * get their status codes, the server keeps serving afterwards, and its resident memory stays flat across a second
 * wave (read from /proc/<pid>/status; a generous bound, since the allocator keeps what it once took).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { type ChatModelFolder, saveChatModel } from './inference-fixture.ts';

const CLIENTS = 64;
const PER_CLIENT = 20;

let folder: ChatModelFolder;
let child: ChildProcess;
let url: string;

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.replace(/\D+/g, '')) * 1024;
}

before(async () => {
  folder = saveChatModel();
  child = spawn(
    process.execPath,
    ['bin/tlab.js', 'serve', folder.dir, '--port', '0', '--served-model-name', 'tiny', '--max-body', '64kb'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) resolve(line.trim());
    });
    child.on('exit', (code) => reject(new Error(`tlab serve exited with ${code}: ${stderr}`)));
  });
});

after(async () => {
  if (child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  folder.remove();
});

// Short prompts and answers: the test is about the server (concurrency, errors, memory), not the model.
const prompts = Array.from({ length: 40 }, (_, i) => `what is ${i}`);

async function chat(content: string) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'tiny',
      messages: [{ role: 'user', content }],
      max_tokens: 4,
      temperature: 0,
    }),
  });
  const body = (await res.json()) as { choices: { message: { content: string } }[] };
  return { status: res.status, text: res.status === 200 ? body.choices[0].message.content : null };
}

/** Every client sends its requests one after another; all clients at once. Returns prompt → answers seen. */
async function wave(): Promise<{ ok: number; answers: Map<string, Set<string>> }> {
  const answers = new Map<string, Set<string>>();
  let ok = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let k = 0; k < PER_CLIENT; k++) {
        const prompt = prompts[(c * PER_CLIENT + k) % prompts.length];
        const r = await chat(prompt);
        if (r.status !== 200) continue;
        ok++;
        const seen = answers.get(prompt) ?? new Set<string>();
        seen.add(r.text!);
        answers.set(prompt, seen);
      }
    }),
  );
  return { ok, answers };
}

test('64 clients × 20 requests all succeed, bad requests are refused, memory stays flat', async () => {
  const first = await wave();
  assert.equal(first.ok, CLIENTS * PER_CLIENT);
  // Greedy: one answer per prompt, whatever it was batched with.
  for (const [prompt, seen] of first.answers)
    assert.equal(seen.size, 1, `'${prompt}' got ${[...seen].join(' | ')}`);

  const send = (body: string) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
  const malformed = await send('{"model": "tiny", "messages": [');
  assert.equal(malformed.status, 400);
  assert.match(((await malformed.json()) as { error: { message: string } }).error.message, /not valid JSON/);
  const oversize = await send(
    JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'a'.repeat(70_000) }] }),
  );
  assert.equal(oversize.status, 413);
  const unknown = await send(JSON.stringify({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(unknown.status, 404);
  const temperature = await send(
    JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], temperature: -1 }),
  );
  assert.equal(temperature.status, 400);
  const error = ((await temperature.json()) as { error: { message: string; param: string } }).error;
  assert.equal(error.param, 'temperature');
  assert.match(error.message, /^temperature: /);

  const rssBefore = rssBytes(child.pid!);
  const second = await wave();
  const rssAfter = rssBytes(child.pid!);
  assert.equal(second.ok, CLIENTS * PER_CLIENT);
  for (const [prompt, seen] of second.answers) assert.deepEqual(seen, first.answers.get(prompt));
  const growth = rssAfter - rssBefore;
  const bound = Math.max(64 * 1024 * 1024, 0.25 * rssBefore);
  assert.ok(
    growth < bound,
    `RSS grew by ${(growth / 2 ** 20).toFixed(1)} MiB over the second wave (from ${(rssBefore / 2 ** 20).toFixed(1)} MiB)`,
  );

  // SIGTERM shuts the server down cleanly.
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0);
});
