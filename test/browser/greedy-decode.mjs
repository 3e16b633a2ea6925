// Greedy decoding of an exported decoder (onnx/model.onnx) with its KV cache kept on the host, written for any
// onnxruntime JavaScript API (onnxruntime-node in Node, onnxruntime-web in the browser test), the way
// transformers.js drives the same file: left-padded prompts, attention_mask over [past; new], position ids that
// count from 0 at each row's first real token, an empty [B, H, 0, D] cache on the first step.
/**
 * @param {any} ort onnxruntime module (its Tensor class)
 * @param {any} session InferenceSession of the exported decoder
 * @param {{ prompts: number[][], padId: number, layers: number, kvHeads: number, headDim: number, newTokens: number, stopIds: number[] }} o
 * @returns {Promise<number[][]>} generated tokens per prompt, each ending at its first stop token
 */
export async function greedyDecode(ort, session, o) {
  const b = o.prompts.length;
  const width = Math.max(...o.prompts.map((p) => p.length));
  const mask = o.prompts.map((p) => [...new Array(width - p.length).fill(0), ...new Array(p.length).fill(1)]);
  let ids = o.prompts.map((p) => [...new Array(width - p.length).fill(o.padId), ...p]);
  const next = o.prompts.map((p) => p.length); // next position per row
  let positions = o.prompts.map((p) =>
    Array.from({ length: width }, (_, i) => Math.max(0, i - (width - p.length))),
  );
  const int64 = (rows) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
      [rows.length, rows[0].length],
    );
  /** @type {Record<string, any>} */
  let past = {};
  for (let i = 0; i < o.layers; i++)
    for (const kind of ['key', 'value'])
      past[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [
        b,
        o.kvHeads,
        0,
        o.headDim,
      ]);
  const out = o.prompts.map(() => []);
  const done = o.prompts.map(() => false);
  for (let step = 0; step < o.newTokens; step++) {
    const r = await session.run({
      input_ids: int64(ids),
      attention_mask: int64(mask),
      position_ids: int64(positions),
      ...past,
    });
    const [, t, v] = r.logits.dims;
    const logits = r.logits.data;
    const chosen = [];
    for (let row = 0; row < b; row++) {
      const base = (row * t + t - 1) * v;
      let best = 0;
      for (let k = 1; k < v; k++) if (logits[base + k] > logits[base + best]) best = k;
      chosen.push(best);
      if (!done[row]) {
        out[row].push(best);
        if (o.stopIds.includes(best)) done[row] = true;
      }
    }
    if (done.every(Boolean)) break;
    past = {};
    for (let i = 0; i < o.layers; i++)
      for (const kind of ['key', 'value']) past[`past_key_values.${i}.${kind}`] = r[`present.${i}.${kind}`];
    ids = chosen.map((c) => [c]);
    positions = next.map((p) => [p + step]);
    for (const m of mask) m.push(1);
  }
  return out;
}
