/** The engine's op vocabulary for model code: `import * as T from '.../engine/ops/index.ts'`. */
import './all.ts';

export { unbroadcast } from './broadcast.ts';
export * from './creation.ts';
export * from './elementwise.ts';
export * from './indexing.ts';
export * from './loss.ts';
export * from './matmul.ts';
export * from './movement.ts';
export * from './norm.ts';
export * from './quant.ts';
export * from './random.ts';
export * from './reduce.ts';
export * from './softmax.ts';
