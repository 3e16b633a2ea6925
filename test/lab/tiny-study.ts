/**
 * Building blocks of the tiny text studies several tests run: a 1×cols grid-world task and a one-layer GPT-2 zoo
 * model pre-trained on a task with the shared tokenizer (the study names it `shared`).
 */

/** A text grid world of one row: one question per cell, three objects per grid. */
export const gridTask = (cols: number, train: number) => ({
  dataset: 'synthetic:grid-world',
  generator: {
    splits: { train, test: 6 },
    rows: 1,
    cols,
    vocab_subset_size: 3,
    modality: 'text',
    questions_per_image: cols,
  },
  dedupe: false,
});

/** A one-layer GPT-2 of width n_embd pre-trained for `steps` steps on `task`. */
export const tinyGpt2 = (task: string, n_embd: number, steps = 6) => ({
  pretrain: {
    task,
    tokenizer: 'shared',
    config: { model_type: 'gpt2', n_layer: 1, n_embd, n_head: 2 },
    seq_len: 80,
    training: { max_steps: steps, batch_size: 16, lr: 0.003 },
  },
});
