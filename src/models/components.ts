/**
 * Which component a parameter belongs to, from its name, for component training strategies (freeze the vision
 * tower, train only the projector, a separate learning rate for the decoder...). LoRA adapter parameters
 * (`...q_proj.lora_A.weight`) belong to the component of the module they adapt.
 */
import type { ModelComponent } from './types.ts';

const RULES: readonly [RegExp, ModelComponent][] = [
  [/^vision_tower\./, 'encoder'],
  // Qwen2-VL: the merger is its projector, the rest of `visual.` its encoder.
  [/^visual\.merger\./, 'projector'],
  [/^visual\./, 'encoder'],
  [/^multi_modal_projector\./, 'projector'],
  [/^language_model\./, 'decoder'],
  [/^(score|classifier)\./, 'head'],
  [/^(vit|vision_model)\./, 'encoder'],
];

/** The component of a parameter name (anything unmatched is part of a decoder: `wte`, `h.0...`, `model.`, `lm_head`). */
export function componentOf(name: string): ModelComponent {
  for (const [pattern, component] of RULES) if (pattern.test(name)) return component;
  return 'decoder';
}

/** Parameter names grouped by component (every component present, possibly empty). */
export function groupByComponent(names: Iterable<string>): Record<ModelComponent, string[]> {
  const groups: Record<ModelComponent, string[]> = { encoder: [], projector: [], decoder: [], head: [] };
  for (const name of names) groups[componentOf(name)].push(name);
  return groups;
}

/**
 * The parameter-name prefix of each component of a VLM (LoRA targets are restricted to the components trained
 * with LoRA by these prefixes): LLaVA's `vision_tower` / `multi_modal_projector` / `language_model`, Qwen2-VL's
 * `visual.blocks` / `visual.merger` / `model`.
 */
export function componentPrefixes(modelType: string): Record<string, string> {
  if (modelType === 'qwen2_vl')
    return { encoder: 'visual.blocks', projector: 'visual.merger', decoder: 'model' };
  return { encoder: 'vision_tower', projector: 'multi_modal_projector', decoder: 'language_model' };
}
