/**
 * Text widths for headless vega. Without a canvas vega guesses 0.8 em per character, about 60% too wide for
 * sans-serif text, and lays out every title, axis and legend from that guess: wide empty margins around the plot
 * and axis titles far from their labels. These tables are advance widths (thousandths of an em) measured with
 * resvg, per character the larger of Lato and DejaVu Sans (the sans-serif fonts resvg falls back to), so a
 * label is never measured narrower than it renders.
 */

const EXTRAS = '−τρ±→×…·éμσαβγδλε≥≤–—’';
const CHARS = [...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), ...EXTRAS];

// biome-ignore format: a measured table
const REGULAR = [318,401,460,838,637,951,780,275,391,391,500,838,318,372,301,452,637,637,637,637,637,637,637,637,637,637,337,337,838,838,838,531,1000,685,687,699,771,632,576,775,764,295,423,663,558,929,764,801,604,801,695,635,611,736,685,1036,686,624,686,391,452,391,838,500,500,613,635,550,635,616,353,635,634,278,278,580,278,975,634,612,635,635,412,521,393,634,592,818,592,592,525,637,337,637,838,838,603,635,838,1000,838,1000,318,616,637,634,660,639,592,612,592,541,838,838,580,1000,318];
// biome-ignore format: a measured table
const BOLD = [349,457,521,838,696,1002,873,307,458,458,523,838,380,416,380,466,696,696,696,696,696,696,696,696,696,696,400,400,838,838,838,581,1000,774,763,734,831,684,684,821,837,373,430,775,638,996,837,851,733,851,771,721,683,813,774,1104,771,725,726,458,466,458,838,500,500,675,716,593,716,679,436,716,712,343,343,666,343,1042,712,688,716,716,494,596,479,712,652,924,646,652,583,712,366,712,838,838,639,716,838,1000,838,1000,380,679,736,779,688,716,682,688,633,557,838,838,580,1000,380];

const table = (widths: number[]) => new Map(CHARS.map((c, i) => [c, widths[i] / 1000]));
const regular = table(REGULAR);
const bold = table(BOLD);

/** Width in em of a character the tables lack: wide for CJK and other full-width scripts. */
function fallback(c: string): number {
  return (c.codePointAt(0) ?? 0) >= 0x2e80 ? 1 : 0.65;
}

export function isBold(weight: unknown): boolean {
  return weight === 'bold' || weight === 'bolder' || (Number(weight) || 0) >= 600;
}

/** Rendered width in pixels of one line of text. */
export function textWidth(text: string, fontSize: number, boldFace = false): number {
  const widths = boldFace ? bold : regular;
  let em = 0;
  for (const c of text) em += widths.get(c) ?? fallback(c);
  return em * fontSize;
}

interface TextItem {
  fontSize?: number | string;
  fontWeight?: unknown;
  limit?: number;
}

/**
 * A vega `textMetrics.width`: the width of `text` as `item` draws it. Text over the item's limit is cut to the
 * limit (vega truncates it with an ellipsis); measuring the truncation here would recurse into this function.
 */
export function vegaTextWidth(item: TextItem, text: unknown): number {
  const line = text == null ? '' : String(text).trim();
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const w = textWidth(line, size, isBold(item.fontWeight));
  return item.limit && item.limit > 0 ? Math.min(w, item.limit) : w;
}
