/**
 * Inference benchmark for evaluation: greedy generation tokens/s and requests/s of one GPT-2-style model folder
 * (4 layers, d=256, 4 heads, vocabulary 512) in-process (LocalModel, batches of 16) and through `tlab serve` (its
 * own process, 16 concurrent clients on /v1/completions), against a PyTorch KV-cache greedy decoder reading the
 * same safetensors (bench/reference/eval_torch.py, batches of 16), on the same prompts (32 tokens, 64 new tokens,
 * no stop token) in the same run. Programs are compiled in a warm-up pass first. The tokens of all three must agree.
 *
 * The three paths take turns (best of --repeats each), so a change in the machine's load hits all of them. The
 * thread count (TLAB_THREADS, else every core) is the same for onnxruntime and torch; on a busy shared machine
 * TLAB_THREADS=1 gives steadier numbers (OpenMP barriers suffer most from oversubscription).
 *
 *   npm run bench -- eval [--requests 64] [--new-tokens 64] [--repeats 3]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../src/engine/io/safetensors.ts';
import { Graph } from '../src/engine/ir/graph.ts';
import { type GenerationItem, LocalModel } from '../src/eval/inference/local-model.ts';
import { GREEDY } from '../src/eval/inference/types.ts';
import { gpt2Model } from '../src/models/gpt2.ts';
import { initParams, ParamBuilder } from '../src/nn/module.ts';
import { CharTokenizer } from '../src/tokenize/simple-tokenizer.ts';
import { Rng } from '../src/util/random.ts';
import { gpt2Config } from './_shared.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const REQUESTS = arg('requests', 64);
const NEW = arg('new-tokens', 64);
const REPEATS = arg('repeats', 3);
const PROMPT = 32;
const BATCH = 16;
const CLIENTS = 16;
const VOCAB = 512;

// A character tokenizer of exactly VOCAB tokens (no BOS/EOS, so nothing stops generation early): every id but the
// unknown token has a one-character text, so the server's text answers show which tokens it generated.
const tokenizer = CharTokenizer.build({
  characters: Array.from({ length: VOCAB - 1 }, (_, i) => String.fromCodePoint(0x4e00 + i)),
  specialTokens: { pad: null, bos: null, eos: null },
});
const config = gpt2Config(VOCAB, 256, 256, 4, 4);
const model = gpt2Model(config);
const graph = new Graph();
const pb = new ParamBuilder(graph);
model.forward(pb, { ids: graph.input('ids', 'int64', [1, 1]) });
// A wider init than GPT-2's 0.02, so greedy choices have margins that float rounding does not flip.
const specs = [...pb.specs.values()].map((s) =>
  s.init.kind === 'normal' ? { ...s, init: { kind: 'normal' as const, std: 0.2 } } : s,
);
const weights = initParams(specs, 0);

const dir = mkdtempSync(join(tmpdir(), 'tlab-bench-eval-'));
writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['GPT2LMHeadModel'] }));
writeSafetensors(
  join(dir, 'model.safetensors'),
  new Map([...weights].map(([k, v]) => [`transformer.${k}`, v])),
);
tokenizer.save(dir);
const rng = new Rng(7);
const prompts = Array.from({ length: REQUESTS }, () =>
  Array.from({ length: PROMPT }, () => 1 + rng.int(VOCAB - 1)),
);
writeFileSync(join(dir, 'prompts.json'), JSON.stringify(prompts));

let server: ChildProcess | null = null;
try {
  // ---------------------------------------------------------------- in-process
  const local = LocalModel.load(dir, { batchSize: BATCH });
  const items: GenerationItem[] = prompts.map((ids) => ({
    prompt: { ids, images: [] },
    params: { ...GREEDY, maxTokens: NEW },
    stopIds: [],
  }));
  const warm = await local.generate(items); // compiles every program the run needs
  const ours = warm.map((g) => g.tokenIds);
  const oursText = warm.map((g) => g.text);
  const inProcess = async () => {
    const t0 = performance.now();
    await local.generate(items);
    return (performance.now() - t0) / 1000;
  };

  // ---------------------------------------------------------------- through tlab serve
  server = spawn(
    process.execPath,
    [
      'bin/tlab.js',
      'serve',
      dir,
      '--port',
      '0',
      '--max-batch',
      String(BATCH),
      '--served-model-name',
      'bench',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('http://'));
      if (line) resolve(line.trim());
    });
    server!.on('exit', (code) => reject(new Error(`tlab serve exited with ${code}`)));
  });
  const complete = async (ids: number[]) => {
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'bench', prompt: ids, max_tokens: NEW, temperature: 0 }),
    });
    if (!res.ok) throw new Error(`tlab serve answered ${res.status}: ${await res.text()}`);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    return { text: body.choices[0].text, tokens: body.usage.completion_tokens };
  };
  /** CLIENTS clients, each sending its share of the prompts one after another. */
  const wave = async () => {
    const texts: string[] = new Array(prompts.length);
    let tokens = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = c; i < prompts.length; i += CLIENTS) {
          const r = await complete(prompts[i]);
          texts[i] = r.text;
          tokens += r.tokens;
        }
      }),
    );
    return { texts, tokens, seconds: (performance.now() - t0) / 1000 };
  };
  const served = await wave(); // warm-up: compiles the server's programs

  // ---------------------------------------------------------------- PyTorch reference
  const threads = Number(process.env.TLAB_THREADS) || availableParallelism();
  const torchRun = () => {
    const py = spawnSync(
      '/usr/bin/python3',
      ['bench/reference/eval_torch.py', dir, join(dir, 'prompts.json'), String(NEW), String(BATCH), '1'],
      {
        encoding: 'utf8',
        env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
      },
    );
    if (py.status !== 0) throw new Error(`reference failed (needs Debian's python3-torch):\n${py.stderr}`);
    return JSON.parse(py.stdout.trim().split('\n').pop()!) as {
      tokens: number[][];
      seconds: number;
      torch: string;
    };
  };

  // The three paths take turns, so a change in the machine's load hits all of them; best of REPEATS each.
  let inSeconds = Number.POSITIVE_INFINITY;
  let serveSeconds = Number.POSITIVE_INFINITY;
  let ref = torchRun();
  for (let r = 0; r < REPEATS; r++) {
    inSeconds = Math.min(inSeconds, await inProcess());
    serveSeconds = Math.min(serveSeconds, (await wave()).seconds);
    if (r > 0) {
      const again = torchRun();
      if (again.seconds < ref.seconds) ref = again;
    }
  }
  await local.release();
  server.kill('SIGTERM');
  const refTokS = (REQUESTS * NEW) / ref.seconds;

  const total = REQUESTS * NEW;
  const sameAsTorch = ours.filter((t, i) => JSON.stringify(t) === JSON.stringify(ref.tokens[i])).length;
  const sameServed = oursText.filter((t, i) => t === served.texts[i]).length;
  const rows = [
    ['in-process (LocalModel, batch 16)', total / inSeconds, REQUESTS / inSeconds, inSeconds],
    [`tlab serve (${CLIENTS} clients)`, total / serveSeconds, REQUESTS / serveSeconds, serveSeconds],
    [`PyTorch KV cache (batch 16, torch ${ref.torch})`, refTokS, REQUESTS / ref.seconds, ref.seconds],
  ] as const;
  console.log(`${REQUESTS} prompts of ${PROMPT} tokens, ${NEW} new tokens each, greedy; ${threads} threads`);
  console.log('path                                         tok/s     req/s   seconds');
  for (const [name, tok, req, s] of rows)
    console.log(
      `${name.padEnd(42)} ${tok.toFixed(0).padStart(7)} ${req.toFixed(2).padStart(9)} ${s.toFixed(3).padStart(9)}`,
    );
  console.log(
    `same tokens: in-process = PyTorch for ${sameAsTorch}/${REQUESTS} prompts, served = in-process for ${sameServed}/${REQUESTS}`,
  );
  if (served.tokens !== total)
    console.error(`eval bench: the server generated ${served.tokens} tokens, expected ${total}`);
  if (sameServed !== REQUESTS) process.exitCode = 1;
  const inTokS = total / inSeconds;
  const serveTokS = total / serveSeconds;
  console.log(
    JSON.stringify({
      bench: 'eval',
      ours: Number(inTokS.toFixed(1)),
      reference: Number(refTokS.toFixed(1)),
      unit: 'tok/s',
      ratio: Number((inTokS / refTokS).toFixed(2)),
      ratio_means:
        'in-process greedy tokens/s over PyTorch KV-cache greedy tokens/s, batch 16, same model and prompts',
      serve_tok_s: Number(serveTokS.toFixed(1)),
      serve_ratio: Number((serveTokS / refTokS).toFixed(2)),
      in_process_req_s: Number((REQUESTS / inSeconds).toFixed(2)),
      serve_req_s: Number((REQUESTS / serveSeconds).toFixed(2)),
      reference_req_s: Number((REQUESTS / ref.seconds).toFixed(2)),
      clients: CLIENTS,
      requests: REQUESTS,
      prompt_tokens: PROMPT,
      new_tokens: NEW,
      model: '4 layers, d=256, 4 heads, vocab 512',
      same_tokens_torch: sameAsTorch,
      same_tokens_served: sameServed,
      threads,
    }),
  );
} finally {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
