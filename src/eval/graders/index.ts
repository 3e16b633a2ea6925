/**
 * Graders: score predictions against references. `createGrader(task.grader, task.grader_options, where)`
 * gives a Grader; `listGraders()` describes every grader and its options (docs/graders.md has the formulas).
 */
export { cookbookScore } from './json-cookbook.ts';
export { extractJson } from './json-extract.ts';
export { createGrader, graderName, listGraders } from './registry.ts';
export type {
  ChoiceLoglik,
  FieldScore,
  GradeAggregate,
  GradeInput,
  Grader,
  GraderInfo,
  GraderNeeds,
  RowGrade,
} from './types.ts';
