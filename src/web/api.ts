/**
 * The dashboard's JSON routes over the experiment folder: summary, runs, training curves, transfer matrix,
 * estimators, geometry, graded samples, one uid across models, and bookmarks (the store `tlab bookmark` uses:
 * <experiment>/formatted_datasets/bookmarks.json). Everything is read from files; names in queries are checked
 * against what the experiment has before any path is built from them.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Bookmarks } from '../data/bookmarks.ts';
import { findExample } from '../data/read.ts';
import { estimatorGroups } from '../report/estimator-points.ts';
import { type ExperimentData, loadExperiment } from '../report/experiment.ts';
import { summaryBest } from '../report/experiment-types.ts';
import {
  bookmarksFile,
  cellSamples,
  gridCell,
  knownTasks,
  sampleDetail,
  taskDirOf,
} from '../report/samples.ts';
import { readCurves } from '../report/training-curves.ts';
import { TlabError } from '../util/errors.ts';
import type { FolderWatcher } from './live.ts';

/** The experiment as last read, re-read when the folder's fingerprint changes. */
export class ExperimentCache {
  private data: ExperimentData | undefined;
  private version = '';
  private checkedAt = 0;

  constructor(
    readonly dir: string,
    private readonly watcher: FolderWatcher,
  ) {}

  get(): ExperimentData {
    const now = Date.now();
    if (now - this.checkedAt > 300) {
      this.watcher.poll();
      this.checkedAt = now;
    }
    if (!this.data || this.version !== this.watcher.version) {
      this.version = this.watcher.version;
      this.data = loadExperiment(this.dir);
    }
    return this.data;
  }
}

function fail(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof TlabError)
    return reply
      .code(error.message.startsWith('no ') ? 404 : 400)
      .send({ error: error.message, details: error.details });
  throw error;
}

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v.length > 0 && v.length < 500 ? v : undefined;

/** Registers the routes; returns a function that ends the open event streams (for shutdown). */
export function registerApiRoutes(
  app: FastifyInstance,
  cache: ExperimentCache,
  watcher: FolderWatcher,
): () => void {
  const streams = new Set<ServerResponse>();
  app.get('/api/experiment', async () => {
    const e = cache.get();
    return {
      name: e.name,
      dir: e.dir,
      version: watcher.version,
      warnings: e.warnings,
      notes: e.summary?.notes ?? [],
      runs: e.runs.length,
      states: Object.fromEntries(
        [...new Set(e.runs.map((r) => r.state))].map((st) => [
          st,
          e.runs.filter((r) => r.state === st).length,
        ]),
      ),
      models: e.grid?.models.map((m) => m.name) ?? [],
      tasks: knownTasks(e.dir, e.grid),
      has: {
        grid: e.grid !== null,
        transfer: e.transfer !== null,
        summary: e.summary !== null,
        estimators: e.estimators.length > 0,
        curves: e.logs.length > 0,
        geometry: e.geometry.length > 0,
      },
    };
  });

  app.get('/api/runs', async () => {
    const e = cache.get();
    const runs = e.runs.map(({ config: _config, ...r }) => r);
    const keys = (pick: (r: (typeof runs)[number]) => object | undefined) => [
      ...new Set(runs.flatMap((r) => Object.keys(pick(r) ?? {}))),
    ];
    return { runs, paramKeys: keys((r) => r.params), resultKeys: keys((r) => r.result) };
  });

  app.get('/api/curves', async () => {
    const e = cache.get();
    const warnings: string[] = [];
    const series = e.logs.flatMap((ref) => {
      try {
        return readCurves(e.dir, ref);
      } catch (error) {
        warnings.push((error as Error).message);
        return [];
      }
    });
    return { logs: e.logs, series, warnings };
  });

  app.get('/api/transfer', async () => {
    const e = cache.get();
    return {
      transfer: e.transfer,
      grid: e.grid && { models: e.grid.models, tasks: e.grid.tasks, cells: e.grid.cells },
    };
  });

  app.get('/api/estimators', async () => {
    const e = cache.get();
    return {
      groups: estimatorGroups(e.estimators, e.grid, e.summary),
      best: Object.fromEntries(summaryBest(e.summary).map((b) => [b.task, b])),
    };
  });

  app.get('/api/geometry', async () => ({ analyses: cache.get().geometry }));

  app.get('/api/samples', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const e = cache.get();
    const model = str(q.model);
    const task = str(q.task);
    if (!model || !task) return reply.code(400).send({ error: 'give ?model=<grid model>&task=<grid task>' });
    try {
      const cell = gridCell(e.grid, model, task);
      const rows = cellSamples(e.dir, e.grid, model, task).map(({ prompt: _p, ...r }) => r);
      const { key: _k, ...shown } = cell;
      return { cell: shown, rows };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.get('/api/sample', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const e = cache.get();
    const task = str(q.task);
    const uid = str(q.uid);
    if (!task || !uid) return reply.code(400).send({ error: 'give ?task=<task>&uid=<uid>' });
    if (!knownTasks(e.dir, e.grid).includes(task))
      return reply.code(404).send({ error: `no task '${task}' in this experiment` });
    try {
      const detail = await sampleDetail(e.dir, e.grid, task, uid);
      const marks = new Bookmarks(bookmarksFile(e.dir)).list();
      return { ...detail, bookmarks: marks };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.get('/api/bookmarks', async (_req, reply) => {
    try {
      return { file: bookmarksFile(cache.dir), bookmarks: new Bookmarks(bookmarksFile(cache.dir)).list() };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.post('/api/bookmarks', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const task = str(b.task);
    const uid = str(b.uid);
    const note = b.note === undefined || b.note === '' ? undefined : str(b.note);
    if (!task || !uid)
      return reply.code(400).send({ error: 'body: {task, uid, note?} with non-empty strings' });
    const e = cache.get();
    try {
      const dir = taskDirOf(e.dir, e.grid, task);
      if (!dir) throw new TlabError(`no task folder '${task}' inside this experiment`);
      if (!(await findExample(dir, uid)))
        throw new TlabError(`no example with uid '${uid}' in task '${task}'`);
      const added = new Bookmarks(bookmarksFile(e.dir)).add(task, uid, note);
      return { task, uid, added };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.delete('/api/bookmarks', async (req, reply) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const task = str(b.task);
    const uid = str(b.uid);
    if (!task || !uid) return reply.code(400).send({ error: 'body: {task, uid}' });
    try {
      return { task, uid, removed: new Bookmarks(bookmarksFile(cache.dir)).remove(task, uid) };
    } catch (error) {
      return fail(reply, error);
    }
  });

  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
    });
    res.write(`retry: 2000\nevent: version\ndata: ${JSON.stringify({ version: watcher.version })}\n\n`);
    const unsubscribe = watcher.subscribe((version) =>
      res.write(`event: change\ndata: ${JSON.stringify({ version })}\n\n`),
    );
    const ping = setInterval(() => res.write(': ping\n\n'), 15000);
    ping.unref();
    streams.add(res);
    req.raw.on('close', () => {
      clearInterval(ping);
      unsubscribe();
      streams.delete(res);
    });
  });
  return () => {
    for (const res of streams) res.end();
    streams.clear();
  };
}
