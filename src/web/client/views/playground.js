// Playground: a prompt (and images, for a VLM) sent to a model with decoding knobs, the answer streamed in.
// Two modes, and the page says which one answered: through `tlab serve` (proxied by the dashboard, which logs
// every exchange), or an exported ONNX model run in this browser by onnxruntime-web (WebAssembly, no server
// involved in the answer; the exchange is posted to the same log afterwards).
import { api, h, select } from '../util.js';

/** @type {Map<string, any>} loaded in-browser models, by export folder */
const loaded = new Map();

export const live = false;

/** Reads server-sent events from a fetch response; calls onData with each parsed `data:` object. */
async function readEvents(/** @type {Response} */ r, /** @type {(d: any) => void} */ onData) {
  const reader = /** @type {ReadableStream<Uint8Array>} */ (r.body).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const blocks = buffer.split('\n\n');
    buffer = blocks.pop() ?? '';
    for (const block of blocks)
      for (const line of block.split('\n'))
        if (line.startsWith('data: ') && line !== 'data: [DONE]') onData(JSON.parse(line.slice(6)));
  }
}

const asDataUrl = (/** @type {File} */ f) =>
  new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsDataURL(f);
  });

/** @param {HTMLElement} root */
export async function render(root) {
  const info = await api('/api/playground');
  const modes = [...(info.serve ? ['serve'] : []), ...(info.onnx.length ? ['onnx'] : [])];
  if (modes.length === 0) {
    root.replaceChildren(
      h('h2', null, 'Playground'),
      h(
        'p',
        { class: 'muted' },
        'No model to talk to: start the dashboard with --serve-url <URL of tlab serve>, or export a model into the experiment folder (tlab export <model> --out <experiment>/exports/<name>) to run it in the browser.',
      ),
    );
    return;
  }
  let mode = modes[0];
  const modelBox = h('span');
  const modelChoices = () =>
    mode === 'serve'
      ? info.serve.models.map((/** @type {any} */ m) => m.id)
      : info.onnx.map((/** @type {any} */ m) => m.path);
  const drawModels = () =>
    modelBox.replaceChildren(select('pg-model', modelChoices(), modelChoices()[0] ?? '', () => {}));
  const num = (
    /** @type {string} */ id,
    /** @type {string} */ value,
    /** @type {string} */ step,
    /** @type {string} */ min,
    /** @type {string} */ max,
  ) => h('input', { id, type: 'number', value, step, min, max, style: 'width: 6em' });
  const temperature = num('pg-temperature', '0', '0.05', '0', '5');
  const topK = num('pg-top-k', '0', '1', '0', '100000');
  const topP = num('pg-top-p', '1', '0.05', '0', '1');
  const maxTokens = num('pg-max-tokens', '16', '1', '1', '4096');
  const seed = num('pg-seed', '0', '1', '0', '2147483647');
  const stop = h('input', {
    id: 'pg-stop',
    type: 'text',
    placeholder: 'stop strings, separated by |',
    style: 'width: 16em',
  });
  const system = h('input', {
    id: 'pg-system',
    type: 'text',
    placeholder: 'system message (optional)',
    style: 'width: 30em',
  });
  const prompt = /** @type {HTMLTextAreaElement} */ (
    h('textarea', { id: 'pg-prompt', rows: 4, placeholder: 'your prompt' })
  );
  const images = /** @type {HTMLInputElement} */ (
    h('input', { id: 'pg-images', type: 'file', accept: 'image/png,image/jpeg,image/webp', multiple: true })
  );
  const output = h('pre', { id: 'pg-output' });
  const status = h('p', { id: 'pg-status', class: 'muted' });
  const modeLine = h('p', { id: 'pg-mode' });
  const describe = () => {
    modeLine.textContent =
      mode === 'serve'
        ? `mode: tlab serve at ${info.serve.url} (proxied by this dashboard)${info.serve.error ? ` — ${info.serve.error}` : ''}`
        : 'mode: in this browser — onnxruntime-web (WebAssembly) runs the exported ONNX model; no server computes the answer';
    images.disabled = mode !== 'serve';
  };
  const settings = () => {
    const s = {
      temperature: Number(temperature.value),
      top_k: Number(topK.value),
      top_p: Number(topP.value),
      max_tokens: Number(maxTokens.value),
      seed: Number(seed.value),
      stop: stop.value ? stop.value.split('|').filter(Boolean) : undefined,
    };
    return s;
  };
  const send = async () => {
    const model = /** @type {HTMLSelectElement} */ (document.getElementById('pg-model')).value;
    const user = prompt.value;
    output.textContent = '';
    status.textContent = 'running…';
    root.dataset.exchange = 'running';
    const started = performance.now();
    try {
      if (mode === 'serve') {
        // images before the text, as the task folders write VLM prompts
        /** @type {any[]} */
        const parts = [];
        for (const f of images.files ?? [])
          parts.push({ type: 'image_url', image_url: { url: await asDataUrl(f) } });
        parts.push({ type: 'text', text: user });
        const messages = [
          ...(system.value ? [{ role: 'system', content: system.value }] : []),
          { role: 'user', content: parts.length === 1 ? user : parts },
        ];
        const r = await fetch('/api/playground/chat', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ model, messages, ...settings() }),
        });
        if (!r.ok) throw new Error((await r.json()).error ?? `HTTP ${r.status}`);
        let finish = '';
        let chunks = 0;
        let usage = null;
        await readEvents(r, (d) => {
          if (d.error) throw new Error(d.error.message);
          for (const c of d.choices ?? []) {
            if (c.delta?.content) {
              output.textContent += c.delta.content;
              chunks++;
            }
            if (c.finish_reason) finish = c.finish_reason;
          }
          if (d.usage) usage = d.usage;
        });
        status.textContent = `answered by ${model} through tlab serve: finish ${finish}, ${chunks} chunks streamed${usage ? `, ${/** @type {any} */ (usage).completion_tokens} tokens` : ''}, ${((performance.now() - started) / 1000).toFixed(2)} s; logged to ${info.log}`;
      } else {
        let chat = loaded.get(model);
        if (!chat) {
          status.textContent = 'loading the model into onnxruntime-web…';
          const { OnnxChat } = await import('../onnx-chat.js');
          chat = await OnnxChat.load(model);
          loaded.set(model, chat);
        }
        const messages = [
          ...(system.value ? [{ role: 'system', content: system.value }] : []),
          { role: 'user', content: user },
        ];
        const s = settings();
        const r = await chat.generate(messages, s, (/** @type {string} */ piece) => {
          output.textContent += piece;
        });
        await api('/api/playground/log', {
          method: 'POST',
          body: JSON.stringify({
            model,
            messages,
            settings: s,
            answer: r.text,
            finish_reason: r.finishReason,
            tokens: r.tokens.length,
            seconds: (performance.now() - started) / 1000,
            backend: chat.backend,
          }),
        });
        status.textContent = `ran in this browser (${chat.backend}): finish ${r.finishReason}, ${r.tokens.length} tokens, ${((performance.now() - started) / 1000).toFixed(2)} s; logged to ${info.log}`;
      }
      root.dataset.exchange = 'done';
    } catch (error) {
      status.textContent = `error: ${/** @type {Error} */ (error).message}`;
      root.dataset.exchange = 'error';
    }
  };
  root.replaceChildren(
    h('h2', null, 'Playground'),
    h(
      'div',
      { class: 'controls' },
      h(
        'label',
        null,
        'mode',
        select(
          'pg-mode-select',
          modes,
          mode,
          (v) => {
            mode = v;
            drawModels();
            describe();
          },
          { serve: 'tlab serve', onnx: 'in browser (ONNX)' },
        ),
      ),
      h('label', null, 'model', modelBox),
    ),
    modeLine,
    h(
      'div',
      { class: 'controls' },
      h('label', null, 'temperature', temperature),
      h('label', null, 'top-k', topK),
      h('label', null, 'top-p', topP),
      h('label', null, 'max tokens', maxTokens),
      h('label', null, 'seed', seed),
      h('label', null, 'stop', stop),
    ),
    h('div', { class: 'controls' }, system),
    prompt,
    h(
      'div',
      { class: 'controls' },
      h('label', null, 'images (VLM, tlab serve)', images),
      h('button', { id: 'pg-send', onclick: send }, 'send'),
    ),
    output,
    status,
  );
  drawModels();
  describe();
}
