/**
 * Which component a parameter belongs to, from its name, for component training strategies (freeze the vision
 * tower, train only the projector, a separate learning rate for the decoder...). LoRA adapter parameters
 * (`...q_proj.lora_A.weight`) belong to the component of the module they adapt.
 */
import type { ModelComponent } from './types.ts';

const RULES: readonly [RegExp, ModelComponent][] = [
  [/^vision_tower\./, 'encoder'],
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
