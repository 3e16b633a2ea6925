/**
 * Which finetune runs go to the external trainer, and with which settings, as the planner writes them into the
 * run's config (so they change its id): `finetuning.external` for the models it lists (default every zoo model),
 * with `ngpu` and `tokenizer_path` defaulting to the llama-cookbook's `finetuning.ngpu` / `tokenizer_path`.
 */
import { resolve } from 'node:path';
import { TlabError, validChoices } from '../../util/errors.ts';
import type { ExternalTrainer } from '../config/cluster-schema.ts';

interface FinetuningLike {
  external?: ExternalTrainer;
  ngpu?: number;
  tokenizer_path?: string;
}

/** `{external: settings}` for a run of zoo model `model`, or `{}` when it trains in-process. */
export function externalFor(
  ft: FinetuningLike,
  model: string,
  file: string,
  zoo: Iterable<string>,
  baseDir: string,
): { external?: ExternalTrainer } {
  const e = ft.external;
  if (!e) return {};
  const names = [...zoo];
  for (const m of e.models ?? [])
    if (!names.includes(m))
      throw new TlabError(
        `${file}: finetuning.external.models: '${m}' is not a zoo model; valid: ${validChoices(names)}`,
      );
  if (e.models && !e.models.includes(model)) return {};
  const tokenizer = e.tokenizer_path ?? ft.tokenizer_path;
  return {
    external: {
      ...e,
      ngpu: e.ngpu ?? ft.ngpu ?? 1,
      ...(tokenizer ? { tokenizer_path: resolve(baseDir, tokenizer) } : {}),
    },
  };
}
