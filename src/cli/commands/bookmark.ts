/** `tlab bookmark add|list|next|remove`: a persistent list of interesting example uids. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { Bookmarks } from '../../data/bookmarks.ts';
import { findExample, resolveTaskDir } from '../../data/read.ts';
import { TlabError } from '../../util/errors.ts';
import { printJson } from '../options.ts';

interface Common {
  root: string;
  file?: string;
}

function open(opts: Common): Bookmarks {
  return new Bookmarks(opts.file ?? join(opts.root, 'bookmarks.json'));
}

export function registerBookmarkCommands(program: Command): void {
  const bookmark = program
    .command('bookmark')
    .description('bookmark interesting examples (stored in <root>/bookmarks.json) and cycle through them');
  const common = (c: Command): Command =>
    c
      .option('-r, --root <dir>', 'folder holding the built tasks', 'formatted_datasets')
      .option('-f, --file <file>', 'bookmarks file (default: <root>/bookmarks.json)');

  common(
    bookmark
      .command('add')
      .description('bookmark examples of a task')
      .argument('<task>')
      .argument('<uid...>'),
  )
    .option('-n, --note <text>', 'why it is interesting')
    .action(async (task: string, uids: string[], opts: Common & { note?: string }) => {
      const dir = resolveTaskDir(task, opts.root);
      const marks = open(opts);
      for (const uid of uids) {
        if (!(await findExample(dir, uid)))
          throw new TlabError(`task '${task}': no example with uid '${uid}'`);
        printJson({ task, uid, added: marks.add(task, uid, opts.note) });
      }
    });

  common(bookmark.command('list').description('list bookmarks').argument('[task]')).action(
    (task: string | undefined, opts: Common) => {
      for (const b of open(opts).list(task)) printJson(b);
    },
  );

  common(
    bookmark
      .command('next')
      .description('the next bookmark (cycles; remembers its place)')
      .argument('[task]'),
  ).action((task: string | undefined, opts: Common) => {
    const b = open(opts).next(task);
    if (!b)
      throw new TlabError(
        `no bookmarks${task ? ` for task '${task}'` : ''} in ${opts.file ?? join(opts.root, 'bookmarks.json')}`,
      );
    printJson(b);
  });

  common(
    bookmark.command('remove').description('remove a bookmark').argument('<task>').argument('<uid>'),
  ).action((task: string, uid: string, opts: Common) => {
    printJson({ task, uid, removed: open(opts).remove(task, uid) });
  });
}
