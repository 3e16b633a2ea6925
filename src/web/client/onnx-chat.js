// A chat model running in the browser: an exported decoder (tlab export: onnx/model.onnx with a KV cache,
// config.json, tokenizer files) executed by onnxruntime-web's WebAssembly backend. Prompts are rendered with the
// folder's chat template (@huggingface/jinja) and encoded by @huggingface/tokenizers, as the project's in-process
// backend does; generation stops at the tokenizer's EOS ids and the template's end-of-turn token. Decoding:
// greedy at temperature 0, else temperature / top-k / top-p sampling from a seeded mulberry32 stream (the same
// seed gives the same answer here, though not the server's: the random streams differ).
import { Template } from '/vendor/jinja.mjs';
import { Tokenizer } from '/vendor/tokenizers.mjs';
import { fileUrl } from './util.js';

const SPECIAL_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'pad_token',
  'sep_token',
  'cls_token',
  'mask_token',
];
const PROBE = 'tlabendofturnprobe';

/** @param {number} seed */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A token id from logits (one row) under the decoding settings. */
export function pickToken(
  /** @type {Float32Array} */ logits,
  /** @type {{temperature?: number, top_k?: number, top_p?: number}} */ s,
  /** @type {() => number} */ random,
) {
  const t = s.temperature ?? 0;
  let best = 0;
  for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
  if (!(t > 0)) return best;
  let ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
  if (s.top_k && s.top_k > 0) ids = ids.slice(0, s.top_k);
  const max = logits[ids[0]];
  let probs = ids.map((i) => Math.exp((logits[i] - max) / t));
  const total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (s.top_p !== undefined && s.top_p < 1) {
    let acc = 0;
    let keep = 0;
    while (keep < probs.length && acc < s.top_p) acc += probs[keep++];
    ids = ids.slice(0, Math.max(1, keep));
    const sum = probs.slice(0, ids.length).reduce((a, b) => a + b, 0);
    probs = probs.slice(0, ids.length).map((p) => p / sum);
  }
  let u = random();
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i];
    if (u <= 0) return ids[i];
  }
  return ids[ids.length - 1];
}

async function getJson(/** @type {string} */ folder, /** @type {string} */ name, optional = false) {
  const r = await fetch(fileUrl(`${folder}/${name}`));
  if (r.ok) return r.json();
  if (optional && r.status === 404) return null;
  throw new Error(`${folder}/${name}: HTTP ${r.status}`);
}

/** Layers, KV heads and head size of the export's past_key_values, from config.json. */
function cacheShape(/** @type {any} */ config) {
  const c = config.text_config ?? config;
  const layers = c.n_layer ?? c.num_hidden_layers;
  const heads = c.n_head ?? c.num_attention_heads;
  const hidden = c.n_embd ?? c.hidden_size;
  const kvHeads = c.num_key_value_heads ?? heads;
  const headDim = c.head_dim ?? hidden / heads;
  if (!Number.isInteger(layers) || !Number.isInteger(kvHeads) || !Number.isInteger(headDim))
    throw new Error('config.json: cannot tell the layers, KV heads and head size of this model');
  return { layers, kvHeads, headDim };
}

export class OnnxChat {
  /** @param {string} folder export folder relative to the experiment */
  static async load(folder) {
    const config = await getJson(folder, 'config.json');
    const tokenizerJson = await getJson(folder, 'tokenizer.json');
    const tokenizerConfig = (await getJson(folder, 'tokenizer_config.json', true)) ?? {};
    const generation = (await getJson(folder, 'generation_config.json', true)) ?? {};
    const unk =
      typeof tokenizerJson.model?.unk_token === 'string' ? { unk_token: tokenizerJson.model.unk_token } : {};
    const tokConfig = Object.fromEntries(
      Object.entries({ ...unk, ...tokenizerConfig }).filter(([, v]) => v !== null && v !== undefined),
    );
    const tokenizer = new Tokenizer(tokenizerJson, tokConfig);
    let source = tokenizerConfig.chat_template;
    if (Array.isArray(source)) source = (source.find((t) => t.name === 'default') ?? source[0])?.template;
    if (typeof source !== 'string') throw new Error(`${folder}: the tokenizer has no chat template`);
    const ort = await import('/vendor/ort/ort.wasm.min.mjs');
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.wasmPaths = '/vendor/ort/';
    const bytes = new Uint8Array(await (await fetch(fileUrl(`${folder}/onnx/model.onnx`))).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
    return new OnnxChat(
      ort,
      session,
      tokenizer,
      new Template(source),
      tokConfig,
      generation,
      cacheShape(config),
    );
  }

  /** @param {any} ort @param {any} session @param {any} tokenizer @param {any} template @param {any} tokConfig @param {any} generation @param {{layers: number, kvHeads: number, headDim: number}} shape */
  constructor(ort, session, tokenizer, template, tokConfig, generation, shape) {
    this.ort = ort;
    this.session = session;
    this.tokenizer = tokenizer;
    this.template = template;
    this.shape = shape;
    this.specials = Object.fromEntries(
      SPECIAL_KEYS.filter((k) => typeof tokConfig[k] === 'string').map((k) => [k, tokConfig[k]]),
    );
    const id = (/** @type {unknown} */ t) => (typeof t === 'string' ? tokenizer.token_to_id(t) : undefined);
    const genEos = Array.isArray(generation.eos_token_id)
      ? generation.eos_token_id
      : [generation.eos_token_id];
    /** @type {Set<number>} */
    this.stopIds = new Set([id(tokConfig.eos_token), ...genEos].filter((x) => Number.isInteger(x)));
    const eot = this.endOfTurnId();
    if (eot !== undefined) this.stopIds.add(eot);
    this.backend = `onnxruntime-web ${ort.env.versions?.web ?? ''} (wasm)`.replace('  ', ' ');
  }

  render(/** @type {{role: string, content: string}[]} */ messages, addGenerationPrompt = true) {
    return String(
      this.template.render({
        ...this.specials,
        messages,
        add_generation_prompt: addGenerationPrompt,
        tools: null,
        documents: null,
      }),
    );
  }

  /** The special token the template writes after an assistant message (as the in-process backend finds it). */
  endOfTurnId() {
    let text;
    try {
      text = this.render(
        [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: PROBE },
        ],
        false,
      );
    } catch {
      return undefined;
    }
    const at = text.lastIndexOf(PROBE);
    const after = at < 0 ? '' : text.slice(at + PROBE.length);
    if (!after) return undefined;
    const first = this.tokenizer.encode(after, { add_special_tokens: false }).ids[0];
    if (first === undefined) return undefined;
    const special =
      this.tokenizer.decode([first], { skip_special_tokens: true }) === '' &&
      this.tokenizer.decode([first], { skip_special_tokens: false }) !== '';
    return special ? first : undefined;
  }

  /**
   * Generates an answer, calling onText with each new piece of decoded text.
   * @param {{role: string, content: string}[]} messages
   * @param {{temperature?: number, top_k?: number, top_p?: number, max_tokens?: number, seed?: number, stop?: string[]}} s
   * @param {(piece: string) => void} onText
   */
  async generate(messages, s, onText) {
    const ort = this.ort;
    const prompt = this.tokenizer.encode(this.render(messages), { add_special_tokens: false }).ids;
    const { layers, kvHeads, headDim } = this.shape;
    const int64 = (/** @type {number[]} */ v) =>
      new ort.Tensor(
        'int64',
        BigInt64Array.from(v, (x) => BigInt(x)),
        [1, v.length],
      );
    /** @type {Record<string, any>} */
    let past = {};
    for (let i = 0; i < layers; i++)
      for (const kind of ['key', 'value'])
        past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
          1,
          kvHeads,
          0,
          headDim,
        ]);
    const random = mulberry32(s.seed ?? 0);
    const max = s.max_tokens ?? 16;
    /** @type {number[]} */
    const tokens = [];
    let ids = prompt;
    let position = 0;
    let text = '';
    let finishReason = 'length';
    for (let step = 0; step < max; step++) {
      const total = position + ids.length;
      const r = await this.session.run({
        input_ids: int64(ids),
        attention_mask: int64(new Array(total).fill(1)),
        position_ids: int64(ids.map((_, i) => position + i)),
        ...past,
      });
      const [, t, v] = r.logits.dims;
      const row = r.logits.data.subarray((t - 1) * v, t * v);
      const next = pickToken(row, s, random);
      position = total;
      past = {};
      for (let i = 0; i < layers; i++)
        for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = r[`present.${i}.${kind}`];
      if (this.stopIds.has(next)) {
        finishReason = 'stop';
        break;
      }
      tokens.push(next);
      const decoded = this.tokenizer.decode(tokens, { skip_special_tokens: true });
      const cut = (s.stop ?? []).map((x) => decoded.indexOf(x)).filter((i) => i >= 0);
      if (cut.length) {
        const shown = decoded.slice(0, Math.min(...cut));
        if (shown.length > text.length) onText(shown.slice(text.length));
        text = shown;
        finishReason = 'stop';
        break;
      }
      if (decoded.startsWith(text)) onText(decoded.slice(text.length));
      text = decoded;
      ids = [next];
    }
    return { text, tokens, finishReason };
  }
}
