/**
 * The one reader of `TLAB_*` environment settings. Each is read when it is needed (a benchmark may set one before
 * the first session), validated, and a bad value is an error naming the variable and what is valid, never
 * silently replaced by the default; a TLAB_* variable that is no setting gets a warning from the CLI. Code outside
 * this file does not read `process.env.TLAB_*`.
 */
import { didYouMean } from './did-you-mean.ts';
import { TlabError } from './errors.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** Every setting with what it does; the README's environment paragraph lists the same. */
export const ENV_SETTINGS = {
  TLAB_THREADS: 'intra-op threads of onnxruntime sessions (a positive integer; default: every core)',
  TLAB_LINALG_THREADS: "threads of linalg's onnxruntime products (a positive integer; default: TLAB_THREADS)",
  TLAB_EXECUTION_PROVIDERS:
    'onnxruntime execution providers in order of preference (comma-separated; default cpu)',
  TLAB_ORT_PROFILE: 'write onnxruntime profiles with this file prefix (default: off)',
  TLAB_LINALG_WASM: "linalg's WebAssembly SIMD kernels: 1 (default) or 0 for the JS loops",
} as const;

export type EnvSetting = keyof typeof ENV_SETTINGS;

/** onnxruntime's execution provider names (onnxruntime-common's ExecutionProviderOptionMap). */
export const EXECUTION_PROVIDERS = [
  'cpu',
  'cuda',
  'tensorrt',
  'dml',
  'coreml',
  'webgpu',
  'webnn',
  'qnn',
  'nnapi',
  'xnnpack',
] as const;

function raw(name: EnvSetting, env: Env): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function invalid(name: EnvSetting, value: string, valid: string): TlabError {
  return new TlabError(`${name}='${value}': ${valid}`, `${name}: ${ENV_SETTINGS[name]}`);
}

function positiveInt(name: EnvSetting, env: Env): number | undefined {
  const v = raw(name, env);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1)
    throw invalid(name, v, 'expected a positive integer, or leave it unset');
  return n;
}

/** TLAB_THREADS, or undefined when unset. */
export function threadsSetting(env: Env = process.env): number | undefined {
  return positiveInt('TLAB_THREADS', env);
}

/** TLAB_LINALG_THREADS, else TLAB_THREADS, or undefined when neither is set. */
export function linalgThreadsSetting(env: Env = process.env): number | undefined {
  return positiveInt('TLAB_LINALG_THREADS', env) ?? threadsSetting(env);
}

/** TLAB_EXECUTION_PROVIDERS as a list (default ['cpu']). */
export function executionProvidersSetting(env: Env = process.env): string[] {
  const v = raw('TLAB_EXECUTION_PROVIDERS', env);
  if (v === undefined) return ['cpu'];
  const names = v.split(',').map((s) => s.trim().toLowerCase());
  const known: readonly string[] = EXECUTION_PROVIDERS;
  const bad = names.find((n) => !known.includes(n));
  if (bad !== undefined)
    throw invalid(
      'TLAB_EXECUTION_PROVIDERS',
      v,
      `${bad === '' ? 'an empty name' : `'${bad}'`} is not an execution provider; valid: ${EXECUTION_PROVIDERS.join(', ')}`,
    );
  return names;
}

/** TLAB_ORT_PROFILE (a file prefix), or undefined when profiling is off. */
export function ortProfileSetting(env: Env = process.env): string | undefined {
  return raw('TLAB_ORT_PROFILE', env);
}

/** TLAB_LINALG_WASM: true unless it is 0. */
export function linalgWasmSetting(env: Env = process.env): boolean {
  const v = raw('TLAB_LINALG_WASM', env);
  if (v === undefined || v === '1') return true;
  if (v === '0') return false;
  throw invalid('TLAB_LINALG_WASM', v, 'expected 1 (use the WebAssembly kernels) or 0 (the JS loops)');
}

/** Variables the project's own scripts set for their children (the test runner marks them). */
const INTERNAL = ['TLAB_TEST'];

/** Warnings for TLAB_* variables that are no setting (a typo would otherwise be ignored without a word). */
export function unknownEnvSettings(env: Env = process.env): string[] {
  const known = Object.keys(ENV_SETTINGS);
  return Object.keys(env)
    .filter((name) => name.startsWith('TLAB_') && !known.includes(name) && !INTERNAL.includes(name))
    .map(
      (name) =>
        `${name} is not a transferlab setting${didYouMean(name, known)}; settings: ${known.join(', ')}`,
    );
}
