/**
 * Which parameters train, and with which learning rate: `full` fine-tuning, `lora` (adapters only), or per
 * component, each full, LoRA or frozen, with its own learning rate. Components are `encoder` (vision tower),
 * `projector`, `decoder` (language model) and `head` (classification head); the Hugging Face module prefixes
 * that LLaVA / Qwen2-VL users know (`vision_tower`, `multi_modal_projector`, `language_model`, ...) are accepted
 * as their aliases. Biases and norm weights (rank < 2) get no weight decay, as in Hugging Face's Trainer and nanoGPT.
 */
import type { ParamGroup } from '../engine/runtime/train-step.ts';
import type { LoraConfig } from '../nn/lora.ts';
import type { ParamSpec } from '../nn/module.ts';
import { isQuantParam, type QuantizeConfig } from '../nn/quant.ts';
import { didYouMean } from '../util/did-you-mean.ts';
import { TlabError, validChoices } from '../util/errors.ts';

export type ComponentMode = 'full' | 'lora' | 'frozen';

export interface StrategyConfig {
  kind: 'full' | 'lora' | 'components';
  lora?: Omit<LoraConfig, 'targets'> & { targets?: readonly (string | RegExp)[] };
  /** For kind 'components': mode per component name or alias (components not named are frozen). */
  components?: Readonly<Record<string, ComponentMode>>;
  /** Learning rate per component; others use the base learning rate. */
  learningRates?: Readonly<Record<string, number>>;
  weightDecay?: number;
  /** QLoRA: the base's Linear weights are stored 4-bit (nn/quant.ts) and never trained. */
  quantizeBase?: QuantizeConfig;
}

/** Maps a parameter name to its component (`encoder`, `projector`, `decoder`, `head`; see models/components.ts). */
export type ComponentOf = (paramName: string) => string;

/** Hugging Face module prefixes accepted in `components:` and `learning_rates:` for the component they hold. */
export const COMPONENT_ALIASES: Readonly<Record<string, string>> = {
  vision_tower: 'encoder',
  vision_model: 'encoder',
  visual: 'encoder',
  multi_modal_projector: 'projector',
  language_model: 'decoder',
  score: 'head',
  classifier: 'head',
};

/** The strategy with aliased component names replaced by the components they name (each named once). */
export function resolveComponentAliases(strategy: StrategyConfig): StrategyConfig {
  const resolve = <T>(
    record: Readonly<Record<string, T>> | undefined,
    field: string,
  ): Record<string, T> | undefined => {
    if (!record) return undefined;
    const out: Record<string, T> = {};
    const from: Record<string, string> = {};
    for (const [name, value] of Object.entries(record)) {
      const component = COMPONENT_ALIASES[name] ?? name;
      if (component in out)
        throw new TlabError(
          `strategy.${field}: '${name}' and '${from[component]}' both name the ${component} component; keep one`,
        );
      out[component] = value;
      from[component] = name;
    }
    return out;
  };
  return {
    ...strategy,
    components: resolve(strategy.components, 'components'),
    learningRates: resolve(strategy.learningRates, 'learning_rates'),
  };
}

export const SINGLE_COMPONENT: ComponentOf = () => 'model';

/** The LoRA configuration the model must be built with (targets restricted to LoRA components), or null. */
export function loraFor(
  given: StrategyConfig,
  componentPrefixes: Readonly<Record<string, string>> = {},
): LoraConfig | null {
  const strategy = resolveComponentAliases(given);
  const modes =
    strategy.kind === 'lora' ? null : strategy.kind === 'components' ? (strategy.components ?? {}) : {};
  if (strategy.kind === 'full') return null;
  if (modes && !Object.values(modes).includes('lora')) return null;
  const lora = strategy.lora;
  if (!lora)
    throw new TlabError(`strategy '${strategy.kind}' uses LoRA but has no lora settings (r, alpha, targets)`);
  const targets = lora.targets ?? [];
  if (targets.length === 0)
    throw new TlabError('strategy.lora.targets: name at least one module (e.g. c_attn, q_proj)');
  if (!modes) return { ...lora, targets };
  // Restrict every target to the components trained with LoRA.
  const prefixes = Object.entries(modes)
    .filter(([, m]) => m === 'lora')
    .map(([c]) => componentPrefixes[c] ?? c);
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const restricted = targets.flatMap((t) =>
    prefixes.map((p) => {
      const head = p ? `^${escaped(p)}\\.` : '^';
      return typeof t === 'string'
        ? new RegExp(`${head}(.*\\.)?${escaped(t)}$`)
        : new RegExp(`${head}(.*\\.)?(${t.source.replace(/^\^/, '')})`);
    }),
  );
  return { ...lora, targets: restricted };
}

export interface ParameterPlan {
  trainable: string[];
  frozen: string[];
  groups: ParamGroup[];
  /** Learning rate per group, in group order (the schedule multiplies these). */
  baseLrs: number[];
}

export function planParameters(
  specs: Iterable<ParamSpec>,
  given: StrategyConfig,
  baseLr: number,
  componentOf: ComponentOf = SINGLE_COMPONENT,
): ParameterPlan {
  const strategy = resolveComponentAliases(given);
  const all = [...specs];
  const components = new Set(all.map((s) => componentOf(s.name)));
  const names = [
    ...components,
    ...Object.keys(COMPONENT_ALIASES).filter((a) => components.has(COMPONENT_ALIASES[a])),
  ];
  for (const c of Object.keys(strategy.components ?? {})) {
    if (!components.has(c))
      throw new TlabError(
        `strategy.components.${c}: no such component${didYouMean(c, names)}; valid: ${validChoices(names)}`,
      );
  }
  for (const c of Object.keys(strategy.learningRates ?? {})) {
    if (!components.has(c))
      throw new TlabError(
        `strategy.learning_rates.${c}: no such component${didYouMean(c, names)}; valid: ${validChoices(names)}`,
      );
  }
  const isAdapter = (n: string) => n.includes('.lora_A.') || n.includes('.lora_B.');
  const trains = (spec: ParamSpec): boolean => {
    if (isQuantParam(spec.name)) return false;
    if (strategy.kind === 'full') return true;
    if (strategy.kind === 'lora') return isAdapter(spec.name);
    const mode = strategy.components?.[componentOf(spec.name)] ?? 'frozen';
    if (mode === 'full') return !isAdapter(spec.name);
    if (mode === 'lora') return isAdapter(spec.name);
    return false;
  };
  const trainable = all.filter(trains).map((s) => s.name);
  const frozen = all.filter((s) => !trains(s)).map((s) => s.name);
  if (trainable.length === 0)
    throw new TlabError(`strategy '${strategy.kind}' selects no trainable parameter`);
  const wd = strategy.weightDecay ?? 0;
  const byKey = new Map<string, ParamGroup & { lr: number }>();
  for (const spec of all) {
    if (!trains(spec)) continue;
    const component = componentOf(spec.name);
    const decay = spec.shape.length >= 2 ? wd : 0;
    const key = `${component}${decay > 0 ? '' : '.no_decay'}`;
    let g = byKey.get(key);
    if (!g) {
      g = { name: key, params: [], weightDecay: decay, lr: strategy.learningRates?.[component] ?? baseLr };
      byKey.set(key, g);
    }
    (g.params as string[]).push(spec.name);
  }
  const groups = [...byKey.values()];
  return {
    trainable,
    frozen,
    groups: groups.map(({ lr: _lr, ...g }) => g),
    baseLrs: groups.map((g) => g.lr),
  };
}
