/**
 * JSON extraction: a record (an invoice-like form) rendered as an image or given as text; the answer is a
 * JSON object with the requested fields, graded by the JSON grader. Field labels vary ("Customer", "Billed
 * to", ...) and distractor lines appear, so reading the form matters, not the layout alone. Each form is one
 * of a few document types (invoice, receipt, ...; title, number label and prefix differ), recorded in the
 * `label` column as a closed class set, so the same forms also serve as a classification task.
 */
import { z } from 'zod';
import { Rng } from '../../util/random.ts';
import { canonicalJson } from '../canonical-json.ts';
import type { SourceRow } from '../sources/types.ts';
import { renderImage, svgDocument, textSvg } from './draw.ts';
import type { SyntheticGenerator } from './types.ts';

const FIRST = [
  'Alice',
  'Bruno',
  'Chen',
  'Dana',
  'Emeka',
  'Farah',
  'Goran',
  'Hana',
  'Ivan',
  'Julia',
  'Kofi',
  'Lena',
  'Mateo',
  'Nadia',
  'Omar',
  'Priya',
];
const LAST = [
  'Smith',
  'Okafor',
  'Novak',
  'Garcia',
  'Tanaka',
  'Muller',
  'Rossi',
  'Kowalski',
  'Haddad',
  'Singh',
  'Larsen',
  'Moreau',
];
const CITIES = [
  'Lisbon',
  'Nairobi',
  'Osaka',
  'Denver',
  'Krakow',
  'Lyon',
  'Pune',
  'Quito',
  'Tallinn',
  'Perth',
];
const ITEMS = ['Consulting', 'Hardware', 'License', 'Support', 'Training', 'Shipping'];

/** Document types: what the form's title, number label and number prefix say it is. */
interface DocType {
  title: string;
  numberLabels: string[];
  prefix: string;
}

export const DOC_TYPES: Record<string, DocType> = {
  invoice: { title: 'INVOICE', numberLabels: ['Invoice No.', 'Invoice #', 'Reference'], prefix: 'INV' },
  receipt: { title: 'RECEIPT', numberLabels: ['Receipt No.', 'Receipt #', 'Reference'], prefix: 'RCT' },
  purchase_order: {
    title: 'PURCHASE ORDER',
    numberLabels: ['PO Number', 'Order No.', 'Reference'],
    prefix: 'PO',
  },
  quote: { title: 'QUOTATION', numberLabels: ['Quote No.', 'Quote #', 'Reference'], prefix: 'QUO' },
};
const DOC_TYPE_NAMES = Object.keys(DOC_TYPES) as [string, ...string[]];

interface FieldDef {
  key: string;
  /** How the form may name the field (the document number's name depends on the type). */
  labels(doc: DocType): string[];
  value(rng: Rng, doc: DocType): string | number;
}

export const JSON_FIELDS: FieldDef[] = [
  {
    key: 'name',
    labels: () => ['Customer', 'Billed to', 'Name'],
    value: (r) => `${r.pick(FIRST)} ${r.pick(LAST)}`,
  },
  {
    key: 'invoice_id',
    labels: (d) => d.numberLabels,
    value: (r, d) => `${d.prefix}-${r.range(10000, 99999)}`,
  },
  {
    key: 'date',
    labels: () => ['Date', 'Issued', 'Document date'],
    value: (r) =>
      `20${r.range(18, 29)}-${String(r.range(1, 12)).padStart(2, '0')}-${String(r.range(1, 28)).padStart(2, '0')}`,
  },
  { key: 'city', labels: () => ['City', 'Ship to', 'Location'], value: (r) => r.pick(CITIES) },
  { key: 'item', labels: () => ['Item', 'Description', 'Service'], value: (r) => r.pick(ITEMS) },
  { key: 'quantity', labels: () => ['Qty', 'Quantity', 'Units'], value: (r) => r.range(1, 40) },
  {
    key: 'total',
    labels: () => ['Total', 'Amount due', 'Total (EUR)'],
    value: (r) => Math.round(r.range(500, 999999)) / 100,
  },
];

const Params = z
  .object({
    splits: z.record(z.string(), z.int().min(0)).default({ train: 200, validation: 20, test: 20 }),
    modality: z.enum(['image', 'text']).default('image'),
    /** Fields asked for, from: name, invoice_id, date, city, item, quantity, total. */
    fields: z
      .array(z.enum(JSON_FIELDS.map((f) => f.key) as [string, ...string[]]))
      .min(1)
      .default(['name', 'invoice_id', 'date', 'total']),
    /** Fields on the form that are not asked for. */
    distractors: z.int().min(0).max(6).default(2),
    image_width: z.int().min(200).max(1200).default(360),
    doc_types: z
      .array(z.enum(DOC_TYPE_NAMES))
      .min(1)
      .default([...DOC_TYPE_NAMES])
      .describe("drawn uniformly per form; the label column (the task's classes) names the one drawn"),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (new Set(p.doc_types).size !== p.doc_types.length)
      ctx.addIssue({ code: 'custom', path: ['doc_types'], message: 'has repeated types' });
  });
type JsonParams = z.infer<typeof Params>;

export const jsonExtraction: SyntheticGenerator<JsonParams> = {
  name: 'json-extraction',
  version: 2,
  description:
    'a rendered form or text record; answer with a JSON object of the requested fields (label: the document type)',
  params: Params,
  columns: (p) => ['record', 'fields', 'answer', 'label', ...(p.modality === 'image' ? ['image'] : [])],
  defaults: (p) => ({
    system_prompt: 'Respond only with a JSON object.',
    user_prompt:
      p.modality === 'image'
        ? 'Extract these fields from the form as JSON with exactly these keys: {fields}.'
        : '{record}\n\nExtract these fields from the record above as JSON with exactly these keys: {fields}.',
    assistant_text_column: 'answer',
    ...(p.modality === 'image' ? { image_column: 'image' } : {}),
    label_column: 'label',
    grader: 'JSONGrader',
    metadata_columns: ['fields'],
  }),
  labels: (p) => [...p.doc_types].sort(),
  numRows: (p, split) => p.splits[split] ?? 0,
  async row(p, seed, split, index): Promise<SourceRow> {
    const rng = Rng.at(seed, 'json-extraction', split, index);
    // Its own stream, so the fields' values do not depend on which types are allowed.
    const type = Rng.at(seed, 'json-extraction', split, index, 'doc_type').pick(p.doc_types);
    const doc = DOC_TYPES[type];
    const asked = JSON_FIELDS.filter((f) => p.fields.includes(f.key));
    const others = JSON_FIELDS.filter((f) => !p.fields.includes(f.key));
    const extra = rng
      .sampleIndices(others.length, Math.min(p.distractors, others.length))
      .map((i) => others[i]);
    const shown = rng.shuffle([...asked, ...extra]);
    const values = new Map(shown.map((f) => [f.key, f.value(rng, doc)]));
    const lines = shown.map((f) => {
      const v = values.get(f.key);
      return `${rng.pick(f.labels(doc))}: ${typeof v === 'number' && f.key === 'total' ? v.toFixed(2) : v}`;
    });
    const record = [doc.title, ...lines].join('\n');
    const answer: Record<string, string | number> = {};
    for (const f of asked) answer[f.key] = values.get(f.key) as string | number;
    const row: SourceRow = {
      record,
      fields: asked.map((f) => f.key).join(', '),
      answer: canonicalJson(answer),
      label: type,
    };
    if (p.modality === 'image') {
      const lineHeight = 26;
      const h = 70 + lines.length * lineHeight;
      let body = `<rect x="6" y="6" width="${p.image_width - 12}" height="${h - 12}" fill="#fffdf6" stroke="#333" stroke-width="2"/>`;
      body += textSvg(20, 38, doc.title, { size: 20, weight: 'bold' });
      body += `<line x1="20" y1="48" x2="${p.image_width - 20}" y2="48" stroke="#999"/>`;
      lines.forEach((line, i) => {
        body += textSvg(20, 74 + i * lineHeight, line, { size: 15 });
      });
      row.image = await renderImage(svgDocument(p.image_width, h, body), `form-${split}-${index}.png`);
    }
    return row;
  },
};
