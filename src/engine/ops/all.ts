/** Loads every op family so their definitions are registered before graphs are built or lowered. */
import './elementwise.ts';
import './reduce.ts';
import './movement.ts';
import './creation.ts';
import './matmul.ts';
import './indexing.ts';
import './softmax.ts';
import './norm.ts';
import './random.ts';
import './quant.ts';
