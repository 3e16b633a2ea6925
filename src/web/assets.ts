/**
 * The files the dashboard page loads besides the experiment's own: its client modules (src/web/client), the
 * chart and smoothing modules it shares with the report (src/report/shared), and the libraries from
 * node_modules — vega, vega-lite and vega-embed (charts), onnxruntime-web (in-browser models), and the
 * tokenizer and Jinja libraries of Hugging Face (prompts for those models). Each is an explicit allow-list built
 * at start-up: a request names a key in it, never a path.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TlabError } from '../util/errors.ts';

const require = createRequire(import.meta.url);

/** The folder of an installed package (its package.json may not be exported). */
export function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (let i = 0; i < 6; i++) {
    if (
      existsSync(join(dir, 'package.json')) &&
      (require(join(dir, 'package.json')) as { name?: string }).name === name
    )
      return dir;
    dir = dirname(dir);
  }
  throw new TlabError(`dashboard: cannot find the installed package '${name}' (run npm install)`);
}

const here = dirname(fileURLToPath(import.meta.url));

/** URL path → file. */
export function assetTable(): Map<string, string> {
  const table = new Map<string, string>();
  const addDir = (prefix: string, dir: string, pattern: RegExp, depth = 1) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        if (depth > 0) addDir(`${prefix}${name}/`, path, pattern, depth - 1);
      } else if (pattern.test(name)) table.set(`${prefix}${name}`, path);
    }
  };
  addDir('/app/', join(here, 'client'), /\.(js|css|html)$/);
  addDir('/shared/', join(here, '..', 'report', 'shared'), /\.js$/);
  const vega = packageDir('vega');
  const vegaLite = packageDir('vega-lite');
  const embed = packageDir('vega-embed');
  table.set('/vendor/vega.min.js', join(vega, 'build', 'vega.min.js'));
  table.set('/vendor/vega-lite.min.js', join(vegaLite, 'build', 'vega-lite.min.js'));
  table.set('/vendor/vega-embed.min.js', join(embed, 'build', 'vega-embed.min.js'));
  const ort = join(packageDir('onnxruntime-web'), 'dist');
  for (const name of readdirSync(ort))
    if (/^ort(-wasm-simd-threaded)?(\.wasm)?(\.min)?\.(mjs|wasm)$/.test(name))
      table.set(`/vendor/ort/${name}`, join(ort, name));
  table.set(
    '/vendor/tokenizers.mjs',
    join(packageDir('@huggingface/tokenizers'), 'dist', 'tokenizers.min.mjs'),
  );
  table.set('/vendor/jinja.mjs', join(packageDir('@huggingface/jinja'), 'dist', 'index.js'));
  for (const [url, path] of table)
    if (!existsSync(path))
      throw new TlabError(`dashboard: ${path} (for ${url}) is missing; reinstall the dependencies`);
  return table;
}

export function isText(path: string): boolean {
  return ['.js', '.mjs', '.css', '.html'].includes(extname(path));
}
