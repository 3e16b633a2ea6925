/**
 * The eval stage's model through `evals.model_server`: the grid model entry (a server entry, so its cells are keyed
 * by what is served: the folder or base + adapter, the launch command and the vLLM settings) and the backend opener
 * that launches the server (model-server.ts), or nothing extra for a server already running at a URL.
 */
import { join } from 'node:path';
import { chooseCheckpoint, type ResolvedModel } from '../../eval/grid/config.ts';
import type { InferenceBackend } from '../../eval/inference/types.ts';
import { TlabError } from '../../util/errors.ts';
import type { ModelServer, ModelServerArgs } from '../config/cluster-schema.ts';
import { inExperiment, runWhere, type StageContext } from '../stages/context.ts';
import { openLaunchedServer, serveRevision, serveSpec } from './model-server.ts';

/** An eval run's model as the planner writes it. */
export interface EvalModelEntry {
  name: string;
  path: string;
  base?: string;
  train_task?: string;
  strategy?: string;
}

export interface ServedEval {
  /** The grid's model entry (with `server`). */
  model: Record<string, unknown>;
  /** Set for launched servers. */
  openBackend?: (model: ResolvedModel) => Promise<InferenceBackend>;
}

export function servedEvalModel(
  ctx: StageContext,
  model: EvalModelEntry,
  settings: ModelServer,
  args: ModelServerArgs,
  checkpoint: number,
  env: NodeJS.ProcessEnv = process.env,
): ServedEval {
  const where = runWhere(ctx);
  const { path, ...rest } = model;
  const dir = inExperiment(ctx, path);
  if (settings.launch === 'url') {
    // The folder only gives the tokenizer for log-likelihood prompts; an adapter-only folder has none.
    let folder: string | null = null;
    try {
      folder = chooseCheckpoint(dir, checkpoint, where);
    } catch {
      folder = null;
    }
    return {
      model: {
        ...rest,
        ...(folder ? { path: folder } : {}),
        server: {
          url: settings.url,
          model: settings.model ?? model.name,
          ...(settings.api_key_env ? { api_key_env: settings.api_key_env } : {}),
          ...(settings.concurrency ? { concurrency: settings.concurrency } : {}),
          ...(settings.timeout_s ? { timeout_s: settings.timeout_s } : {}),
        },
      },
    };
  }
  const apiKey = (): string | undefined => {
    if (!settings.api_key_env) return undefined;
    const key = env[settings.api_key_env];
    if (key === undefined)
      throw new TlabError(
        `${where}: evals.model_server.api_key_env: the environment variable ${settings.api_key_env} is not set`,
      );
    return key;
  };
  const spec = serveSpec(model.name, dir, settings, checkpoint, where);
  const logPath = join(ctx.plan.out, 'external', 'servers', `${model.name}.log`);
  return {
    model: {
      ...rest,
      path: spec.folder,
      server: {
        url: `launch://${settings.launch}/${model.name}`,
        model: model.name,
        revision: serveRevision(spec, settings, args),
      },
    },
    openBackend: async (m) => openLaunchedServer(m, spec, settings, args, logPath, apiKey()),
  };
}

/**
 * An eval run's grid: its settings (without the server keys) and its model entry — served (see above) when the
 * run has `model_server`. The eval stage and the summary (which rebuilds the grid from the cells, so it must key
 * them the same way) both read eval runs through this.
 */
export function evalRunGrid(
  ctx: StageContext,
  runConfig: Record<string, unknown>,
): {
  settings: Record<string, unknown>;
  model: Record<string, unknown>;
  openBackend?: ServedEval['openBackend'];
} {
  const { model, model_server, model_server_args, ...settings } = runConfig as {
    model: EvalModelEntry;
    model_server?: ModelServer;
    model_server_args?: ModelServerArgs;
  } & Record<string, unknown>;
  if (!model_server) return { settings, model: model as unknown as Record<string, unknown> };
  const checkpoint = typeof settings.checkpoint_to_eval === 'number' ? settings.checkpoint_to_eval : -1;
  const served = servedEvalModel(ctx, model, model_server, model_server_args ?? {}, checkpoint);
  return {
    settings,
    model: served.model,
    ...(served.openBackend ? { openBackend: served.openBackend } : {}),
  };
}
