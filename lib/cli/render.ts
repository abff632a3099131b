// Rendering for the pagewalk command: tables, units, SVG and terminal charts
// and the address-space picture. Everything here is pure (data in, string
// out) so that it can be tested without a process to measure.
import { PAGE, PAGE_SHIFT } from '../page';
import { ANONYMOUS } from '../proc/maps';

// ------------------------------------------------------------------ units

/** kB as smem and the kernel print them: truncated, never rounded up. */
export function kb(bytes: number): number {
  return Math.floor(bytes / 1024);
}

/**
 * smem's abbreviated style (`-k`): 0, 512B, 1.2K, 3.4M, 5.6G. smem's figures
 * are kB and never go below 0.1K; pagewalk's are bytes, and a change of 84
 * bytes is written 84B, never a bare "84.0".
 */
export function human(bytes: number): string {
  if (bytes === 0) return '0';
  if (Math.abs(bytes) < 1024) return `${Math.round(bytes)}B`;
  let x = bytes;
  let suffix = '';
  for (const s of ['', 'K', 'M', 'G', 'T', 'P', 'E']) {
    suffix = s;
    if (x < 1024) break;
    x /= 1024;
  }
  return `${x.toFixed(1)}${suffix}`;
}

/** Binary units for labels: "4 KiB", "127.9 TiB". */
export function iec(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let x = bytes;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  const digits = i === 0 || Number.isInteger(x) ? 0 : 1;
  return `${x.toFixed(digits)} ${units[i]}`;
}

export function percent(value: number, total: number): string {
  if (total === 0) return 'N/A';
  return `${((100 * value) / total).toFixed(2)}%`;
}

export type UnitStyle = 'kb' | 'human' | 'percent';

/** A size cell in the chosen style; `total` is what percentages are of. */
export function formatSize(bytes: number, style: UnitStyle, total = 0): string {
  if (style === 'human') return human(bytes);
  if (style === 'percent') return percent(bytes, total);
  return String(kb(bytes));
}

export function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

// ------------------------------------------------------------------ tables

export interface Column {
  header: string;
  align: 'left' | 'right';
  /** Longer cells are cut to this width (text columns such as commands). */
  maxWidth?: number;
  /** Cut from the start, keeping the end (paths whose last part tells them apart), marked with '…'. */
  keepEnd?: boolean;
}

export interface TableOptions {
  header?: boolean;
  /** A totals row, printed under a rule. */
  totals?: string[];
}

function clip(raw: string, c: Column): string {
  // Command lines may hold newlines and tabs: they would break the rows.
  const cell = raw.replace(/\p{Cc}/gu, ' ');
  if (c.maxWidth === undefined || cell.length <= c.maxWidth) return cell;
  return c.keepEnd ? `…${cell.slice(cell.length - c.maxWidth + 1)}` : cell.slice(0, c.maxWidth);
}

/** An aligned text table; trailing spaces are trimmed from every line. */
export function renderTable(columns: Column[], rows: string[][], options: TableOptions = {}): string {
  const header = options.header ?? true;
  const all = [...(header ? [columns.map((c) => c.header)] : []), ...rows, ...(options.totals ? [options.totals] : [])];
  const widths = columns.map((c, i) => Math.max(0, ...all.map((r) => clip(r[i] ?? '', c).length)));
  const line = (r: string[]) =>
    columns
      .map((c, i) => {
        const cell = clip(r[i] ?? '', c);
        return c.align === 'right' ? cell.padStart(widths[i]) : cell.padEnd(widths[i]);
      })
      .join(' ')
      .trimEnd();
  const out: string[] = [];
  if (header) out.push(line(columns.map((c) => c.header)));
  for (const r of rows) out.push(line(r));
  if (options.totals) {
    out.push('-'.repeat(widths.reduce((a, b) => a + b, 0) + widths.length - 1));
    out.push(line(options.totals));
  }
  return `${out.join('\n')}\n`;
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV. */
export function renderCsv(headers: string[] | null, rows: (string | number)[][]): string {
  const lines = rows.map((r) => r.map(csvCell).join(','));
  if (headers) lines.unshift(headers.map(csvCell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

// ------------------------------------------------------------------ SVG basics

export function escapeXml(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] as string,
  );
}

/** Colours that stay apart for viewers with common colour-vision deficiencies (Okabe-Ito). */
export const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#999999',
  '#332288',
  '#117733',
  '#882255',
  '#44AA99',
];

const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

function svgOpen(width: number, height: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="100%" height="100%" fill="#ffffff"/>\n`;
}

const r1 = (n: number) => Math.round(n * 10) / 10;

/**
 * The width in pixels of `text` in the charts' sans-serif font at `size`:
 * an upper bound (DejaVu Sans, the widest of the fonts named, averages under
 * 0.62 em a character in labels), so that layouts leave room, never clip.
 */
export function textWidth(text: string, size: number): number {
  return Math.ceil([...text].length * size * 0.62);
}

/** `text` shortened with an ellipsis to fit `width` pixels at `size`. */
export function fitText(text: string, size: number, width: number): string {
  const chars = [...text];
  if (textWidth(text, size) <= width) return text;
  const keep = Math.max(1, Math.floor(width / (size * 0.62)) - 1);
  return `${chars.slice(0, keep).join('')}…`;
}

/** A round step for an axis reaching `max` in about `ticks` steps. */
export function niceStep(max: number, ticks = 5): number {
  if (max <= 0) return 1;
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

// ------------------------------------------------------------------ charts

export interface BarSeries {
  name: string;
  /** One value (bytes) per label. */
  values: number[];
}

export interface BarChart {
  title: string;
  labels: string[];
  series: BarSeries[];
}

/** Grouped bars, one group per label, one bar per series; sizes in bytes. */
export function barChartSvg(chart: BarChart, width = 800, height = 600): string {
  const right = 20;
  const top = 60;
  // Labels are rotated 45 degrees and end under their bars: the longest
  // reaches down and, under the first bars, left: the margins make room.
  const labels = chart.labels.map((l) => (l.length > 24 ? `${l.slice(0, 23)}…` : l));
  const reach = (l: string) => Math.ceil(textWidth(l, 11) * Math.SQRT1_2) + 8;
  const bottom = Math.max(150, ...labels.map((l) => reach(l) + 24));
  const left = Math.max(80, ...labels.slice(0, 3).map((l, i) => reach(l) + 10 - i * 40));
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = Math.max(0, ...chart.series.flatMap((s) => s.values));
  // Axis in the binary unit that suits the largest value.
  const unitIdx = max >= 2 ** 30 ? 3 : max >= 2 ** 20 ? 2 : 1;
  const unit = 1024 ** unitIdx;
  const unitName = ['B', 'KiB', 'MiB', 'GiB'][unitIdx];
  const step = niceStep(max / unit);
  const axisMax = Math.max(step, Math.ceil(max / unit / step) * step);
  const y = (v: number) => top + plotH - (v / unit / axisMax) * plotH;
  let s = svgOpen(width, height);
  s += `<text x="${width / 2}" y="28" text-anchor="middle" font-size="18" ${FONT}>${escapeXml(chart.title)}</text>\n`;
  for (let t = 0; t <= axisMax + step / 2; t += step) {
    const yy = r1(y(t * unit));
    s += `<line x1="${left}" y1="${yy}" x2="${width - right}" y2="${yy}" stroke="#dddddd"/>\n`;
    s += `<text x="${left - 6}" y="${yy + 4}" text-anchor="end" font-size="11" ${FONT}>${escapeXml(String(Number(t.toPrecision(6))))}</text>\n`;
  }
  s += `<text x="16" y="${top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})" ${FONT}>${unitName}</text>\n`;
  const n = chart.labels.length;
  const groupW = n ? plotW / n : plotW;
  const barW = (groupW * 0.8) / Math.max(1, chart.series.length);
  chart.labels.forEach((label, i) => {
    const gx = left + i * groupW + groupW * 0.1;
    chart.series.forEach((ser, k) => {
      const v = ser.values[i] ?? 0;
      const yy = y(v);
      s += `<rect x="${r1(gx + k * barW)}" y="${r1(yy)}" width="${r1(Math.max(barW - 1, 0.5))}" height="${r1(top + plotH - yy)}" fill="${PALETTE[k % PALETTE.length]}"><title>${escapeXml(`${label} ${ser.name}: ${iec(v)}`)}</title></rect>\n`;
    });
    const lx = r1(gx + groupW * 0.4);
    const ly = top + plotH + 12;
    const text = labels[i];
    s += `<text x="${lx}" y="${ly}" font-size="11" text-anchor="end" transform="rotate(-45 ${lx} ${ly})" ${FONT}>${escapeXml(text)}</text>\n`;
  });
  s += `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#333333"/>\n`;
  s += `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333333"/>\n`;
  chart.series.forEach((ser, k) => {
    const lx = left + k * 110;
    s += `<rect x="${lx}" y="38" width="12" height="12" fill="${PALETTE[k % PALETTE.length]}"/>`;
    s += `<text x="${lx + 16}" y="48" font-size="12" ${FONT}>${escapeXml(ser.name)}</text>\n`;
  });
  return `${s}</svg>\n`;
}

export interface PieChart {
  title: string;
  labels: string[];
  values: number[];
}

/** Slices under `minFraction` of the whole are merged into one "other" slice. */
export function mergeSmallSlices(chart: PieChart, minFraction = 0.02, maxSlices = 12): PieChart {
  const total = chart.values.reduce((a, b) => a + b, 0);
  const order = chart.values.map((_, i) => i).sort((a, b) => chart.values[b] - chart.values[a]);
  const labels: string[] = [];
  const values: number[] = [];
  let other = 0;
  for (const i of order) {
    if (chart.values[i] <= 0) continue;
    if (labels.length < maxSlices - 1 && chart.values[i] >= total * minFraction) {
      labels.push(chart.labels[i]);
      values.push(chart.values[i]);
    } else other += chart.values[i];
  }
  if (other > 0) {
    labels.push('other');
    values.push(other);
  }
  return { title: chart.title, labels, values };
}

export function pieChartSvg(input: PieChart, width = 800, height = 600): string {
  const chart = mergeSmallSlices(input);
  const total = chart.values.reduce((a, b) => a + b, 0);
  // The legend takes the right half: a label's line and, under it, its size.
  const cx = 220;
  const cy = height / 2 + 20;
  const r = Math.min(200, height / 2 - 60);
  const legendX = cx + r + 40;
  const legendW = width - legendX - 20 - 20;
  const rowH = 34;
  let s = svgOpen(width, height);
  s += `<text x="${width / 2}" y="30" text-anchor="middle" font-size="18" ${FONT}>${escapeXml(chart.title)}</text>\n`;
  let angle = -Math.PI / 2;
  chart.values.forEach((v, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const tip = escapeXml(`${chart.labels[i]}: ${iec(v)} (${percent(v, total)})`);
    if (v >= total) {
      s += `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${colour}"><title>${tip}</title></circle>\n`;
    } else {
      const a2 = angle + (v / total) * 2 * Math.PI;
      const large = a2 - angle > Math.PI ? 1 : 0;
      const p = (a: number) => `${r1(cx + r * Math.cos(a))} ${r1(cy + r * Math.sin(a))}`;
      s += `<path d="M ${cx} ${cy} L ${p(angle)} A ${r} ${r} 0 ${large} 1 ${p(a2)} Z" fill="${colour}" stroke="#ffffff" stroke-width="1"><title>${tip}</title></path>\n`;
      angle = a2;
    }
    const ly = 80 + i * rowH;
    s += `<rect x="${legendX}" y="${ly - 11}" width="14" height="14" fill="${colour}"/>`;
    s += `<text x="${legendX + 20}" y="${ly}" font-size="12" ${FONT}><title>${escapeXml(chart.labels[i])}</title>${escapeXml(fitText(chart.labels[i], 12, legendW))}</text>\n`;
    s += `<text x="${legendX + 20}" y="${ly + 15}" font-size="11" fill="#555555" ${FONT}>${escapeXml(`${iec(v)} (${percent(v, total)})`)}</text>\n`;
  });
  if (total === 0) s += `<text x="${cx}" y="${cy}" text-anchor="middle" font-size="14" ${FONT}>no data</text>\n`;
  return `${s}</svg>\n`;
}

export interface LineSeries {
  name: string;
  /** One value (bytes) per time; null where the series has no value (a process not yet started or gone). */
  values: (number | null)[];
}

export interface LineChart {
  title: string;
  /** Milliseconds since the epoch, ascending. */
  times: number[];
  series: LineSeries[];
}

/** A size over time, one line per series; gaps where a series has no value. */
export function lineChartSvg(chart: LineChart, width = 800, height = 600): string {
  const left = 80;
  const right = 30;
  const top = 60;
  const legendRows = Math.ceil(chart.series.length / 2);
  const bottom = 60 + legendRows * 18;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const max = Math.max(0, ...chart.series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const unitIdx = max >= 2 ** 30 ? 3 : max >= 2 ** 20 ? 2 : 1;
  const unit = 1024 ** unitIdx;
  const unitName = ['B', 'KiB', 'MiB', 'GiB'][unitIdx];
  const step = niceStep(max / unit);
  const axisMax = Math.max(step, Math.ceil(max / unit / step) * step);
  const y = (v: number) => top + plotH - (v / unit / axisMax) * plotH;
  const t0 = chart.times[0] ?? 0;
  const span = Math.max(1, (chart.times[chart.times.length - 1] ?? t0) - t0);
  // A single sample sits in the middle rather than on the axis.
  const x = (t: number) => (chart.times.length > 1 ? left + ((t - t0) / span) * plotW : left + plotW / 2);
  let s = svgOpen(width, height);
  s += `<text x="${width / 2}" y="28" text-anchor="middle" font-size="18" ${FONT}>${escapeXml(chart.title)}</text>\n`;
  for (let t = 0; t <= axisMax + step / 2; t += step) {
    const yy = r1(y(t * unit));
    s += `<line x1="${left}" y1="${yy}" x2="${width - right}" y2="${yy}" stroke="#dddddd"/>\n`;
    s += `<text x="${left - 6}" y="${yy + 4}" text-anchor="end" font-size="11" ${FONT}>${escapeXml(String(Number(t.toPrecision(6))))}</text>\n`;
  }
  s += `<text x="16" y="${top + plotH / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})" ${FONT}>PSS (${unitName})</text>\n`;
  // Time ticks at round numbers of seconds, labelled with the clock time.
  const tStep = niceStep(span / 1000, 6) * 1000;
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, span < 10_000 ? 21 : 19);
  for (let t = 0; chart.times.length > 1 && t <= span * (1 + 1e-9); t += tStep) {
    const xx = r1(x(t0 + t));
    s += `<line x1="${xx}" y1="${top}" x2="${xx}" y2="${top + plotH}" stroke="#eeeeee"/>\n`;
    s += `<text x="${xx}" y="${top + plotH + 16}" text-anchor="middle" font-size="11" ${FONT}>${escapeXml(clock(t0 + t))}</text>\n`;
  }
  s += `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle" font-size="12" ${FONT}>time (UTC)</text>\n`;
  s += `<line x1="${left}" y1="${top + plotH}" x2="${width - right}" y2="${top + plotH}" stroke="#333333"/>\n`;
  s += `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333333"/>\n`;
  chart.series.forEach((ser, k) => {
    const colour = PALETTE[k % PALETTE.length];
    // One polyline per run of values: a process that was not there leaves a gap.
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1)
        s += `<polyline points="${run.join(' ')}" fill="none" stroke="${colour}" stroke-width="2.5" stroke-linejoin="round"/>\n`;
      run = [];
    };
    ser.values.forEach((v, i) => {
      if (v === null) {
        flush();
        return;
      }
      const px = r1(x(chart.times[i]));
      const py = r1(y(v));
      run.push(`${px},${py}`);
      s += `<circle cx="${px}" cy="${py}" r="3.5" fill="${colour}"><title>${escapeXml(`${ser.name} ${clock(chart.times[i])}: ${iec(v)}`)}</title></circle>\n`;
    });
    flush();
    const lx = left + (k % 2) * (plotW / 2);
    const ly = top + plotH + 56 + Math.floor(k / 2) * 18;
    const label = ser.name.length > 48 ? `${ser.name.slice(0, 47)}…` : ser.name;
    s += `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colour}"/>`;
    s += `<text x="${lx + 16}" y="${ly}" font-size="12" ${FONT}>${escapeXml(label)}</text>\n`;
  });
  if (chart.series.length === 0)
    s += `<text x="${left + plotW / 2}" y="${top + plotH / 2}" text-anchor="middle" font-size="14" ${FONT}>no data</text>\n`;
  return `${s}</svg>\n`;
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A horizontal bar `width` cells long at full scale, in eighth-cell steps. */
export function blockBar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return '';
  const eighths = Math.round((value / max) * width * 8);
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

/** The bar chart for a terminal: one line per label and series. */
export function terminalBars(chart: BarChart, columns = 80): string {
  const labelW = Math.min(24, Math.max(5, ...chart.labels.map((l) => l.length)));
  const nameW = Math.max(...chart.series.map((s) => s.name.length), 0);
  const barW = Math.max(10, columns - labelW - nameW - 14);
  const max = Math.max(0, ...chart.series.flatMap((s) => s.values));
  const lines = [chart.title];
  chart.labels.forEach((label, i) => {
    chart.series.forEach((ser, k) => {
      const head = k === 0 ? label.slice(0, labelW).padEnd(labelW) : ''.padEnd(labelW);
      const v = ser.values[i] ?? 0;
      lines.push(`${head} ${ser.name.padEnd(nameW)} ${blockBar(v, max, barW)} ${human(v)}`.trimEnd());
    });
  });
  return `${lines.join('\n')}\n`;
}

const SHADES = ['█', '▓', '▒', '░', '▚', '▞', '▖', '▗', '▘', '▝', '■', '▪'];

/** A pie for a terminal: one stacked bar split by share, and its legend. */
export function terminalPie(input: PieChart, columns = 80): string {
  const chart = mergeSmallSlices(input);
  const total = chart.values.reduce((a, b) => a + b, 0);
  const width = Math.max(20, columns - 2);
  let bar = '';
  let used = 0;
  let acc = 0;
  chart.values.forEach((v, i) => {
    acc += v;
    const upto = total ? Math.round((acc / total) * width) : 0;
    bar += SHADES[i % SHADES.length].repeat(upto - used);
    used = upto;
  });
  const lines = [chart.title, bar];
  chart.values.forEach((v, i) => {
    lines.push(`${SHADES[i % SHADES.length]} ${chart.labels[i]} ${human(v)} ${percent(v, total)}`);
  });
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------ address-space picture

/** Page states of the picture, in drawing order. */
export const PageState = { Exclusive: 0, Shared: 1, Swapped: 2, Zero: 3, None: 4 } as const;
export const STATE_COUNT = 5;
export const STATE_NAMES = ['resident, exclusive', 'resident, shared', 'swapped', 'zero page', 'not present'];
export const STATE_COLOURS = ['#D55E00', '#0072B2', '#CC79A7', '#F0E442', '#eeeeee'];

/** One mapping, its pages counted per state in at most `buckets` pixel buckets. */
export interface PictureBand {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  pages: number;
  buckets: number;
  /** counts[b * STATE_COUNT + state]: pages of bucket b in that state. */
  counts: Float64Array;
}

export const BAND_BUCKETS = 512;

export function newBand(
  start: bigint,
  end: bigint,
  perms: string,
  path: string,
  maxBuckets = BAND_BUCKETS,
): PictureBand {
  const pages = Number((end - start) >> PAGE_SHIFT);
  const buckets = Math.max(1, Math.min(maxBuckets, pages));
  return { start, end, perms, path, pages, buckets, counts: new Float64Array(buckets * STATE_COUNT) };
}

/** The bucket that page `i` of the band falls in. */
function bucketOf(band: PictureBand, i: number): number {
  return Math.min(band.buckets - 1, Math.floor((i * band.buckets) / band.pages));
}

/** First page of bucket b (the inverse of bucketOf). */
function bucketFirst(band: PictureBand, b: number): number {
  return Math.ceil((b * band.pages) / band.buckets);
}

/** Counts `n` pages from page index `first` as `state`, without visiting them one by one. */
export function addPages(band: PictureBand, first: number, n: number, state: number): void {
  let i = first;
  const end = Math.min(first + n, band.pages);
  while (i < end) {
    const b = bucketOf(band, i);
    const next = Math.min(end, b + 1 < band.buckets ? bucketFirst(band, b + 1) : band.pages);
    band.counts[b * STATE_COUNT + state] += next - i;
    i = next;
  }
}

/** Moves `n` pages from one state to another (zero pages first counted as shared). */
export function movePages(band: PictureBand, first: number, n: number, from: number, to: number): void {
  let i = first;
  const end = Math.min(first + n, band.pages);
  while (i < end) {
    const b = bucketOf(band, i);
    const next = Math.min(end, b + 1 < band.buckets ? bucketFirst(band, b + 1) : band.pages);
    const o = b * STATE_COUNT;
    const moved = Math.min(next - i, band.counts[o + from]);
    band.counts[o + from] -= moved;
    band.counts[o + to] += moved;
    i = next;
  }
}

// High 32 bits of a pagemap entry (little-endian): bits 63, 62 and 56.
const HI_PRESENT = 0x80000000;
const HI_SWAPPED = 0x40000000;
const HI_EXCLUSIVE = 0x01000000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Classifies raw pagemap entries for pages first.. of the band. Reads the
 * high words through a Uint32Array view: no BigInt or object per page.
 */
export function addEntries(band: PictureBand, first: number, entries: BigUint64Array): void {
  const words = new Uint32Array(entries.buffer, entries.byteOffset, entries.length * 2);
  const hiOff = LITTLE_ENDIAN ? 1 : 0;
  const n = Math.min(entries.length, band.pages - first);
  for (let k = 0; k < n; k++) {
    const hi = words[2 * k + hiOff];
    const state =
      hi & HI_PRESENT
        ? hi & HI_EXCLUSIVE
          ? PageState.Exclusive
          : PageState.Shared
        : hi & HI_SWAPPED
          ? PageState.Swapped
          : PageState.None;
    band.counts[bucketOf(band, first + k) * STATE_COUNT + state]++;
  }
}

export interface PictureModel {
  title: string;
  bands: PictureBand[];
}

export interface PictureLayout {
  width: number;
  height: number;
  /** Rows drawn for unmapped gaps, with the gap sizes they stand for. */
  gaps: { afterBand: number; bytes: number }[];
}

const BAR_X = 20;
const BAR_W = BAND_BUCKETS;
const ROW_H = 14;
const GAP_H = 12;
const PIC_TOP = 64;

/** Splits `height` pixels between states by count, giving every present state at least one pixel. */
function splitHeights(counts: Float64Array, o: number, height: number): number[] {
  let total = 0;
  for (let s = 0; s < STATE_COUNT; s++) total += counts[o + s];
  const h = new Array<number>(STATE_COUNT).fill(0);
  if (total === 0) {
    h[PageState.None] = height;
    return h;
  }
  let used = 0;
  for (let s = 0; s < STATE_COUNT; s++) {
    if (counts[o + s] > 0) h[s] = Math.max(1, Math.floor((counts[o + s] / total) * height));
    used += h[s];
  }
  // Give or take the rounding difference on the largest share.
  let big = 0;
  for (let s = 1; s < STATE_COUNT; s++) if (h[s] > h[big]) big = s;
  h[big] += height - used;
  return h;
}

function bandLabel(band: PictureBand): string {
  return `${hex(band.start)}-${hex(band.end)} ${band.perms} ${iec(band.pages * PAGE)} ${band.path || ANONYMOUS}`;
}

/** Where the picture's rows go; exposed so tests can check the gap compression. */
export function pictureLayout(model: PictureModel): PictureLayout {
  const gaps: { afterBand: number; bytes: number }[] = [];
  for (let i = 0; i + 1 < model.bands.length; i++) {
    const gap = model.bands[i + 1].start - model.bands[i].end;
    if (gap > 0n) gaps.push({ afterBand: i, bytes: Number(gap) });
  }
  const height = PIC_TOP + model.bands.length * ROW_H + gaps.length * GAP_H + 20;
  // Wide enough for the longest label at 11 px (about 6.6 px a character).
  const longest = Math.max(0, ...model.bands.map((b) => bandLabel(b).length));
  return { width: Math.max(800, Math.ceil(BAR_X + BAR_W + 8 + longest * 6.6 + 12)), height, gaps };
}

/**
 * The address space as a picture: one band per mapping in address order,
 * each a strip of BAND_BUCKETS pixel columns whose colours stack the page
 * states found there. Unmapped stretches, however large, take one thin
 * labelled row, so a 128 TiB space stays readable.
 */
export function pictureSvg(model: PictureModel): string {
  const layout = pictureLayout(model);
  const gapAfter = new Map(layout.gaps.map((g) => [g.afterBand, g.bytes]));
  let s = svgOpen(layout.width, layout.height);
  s += `<text x="${BAR_X}" y="24" font-size="16" ${FONT}>${escapeXml(model.title)}</text>\n`;
  STATE_NAMES.forEach((name, i) => {
    const x = BAR_X + i * 150;
    s += `<rect x="${x}" y="36" width="12" height="12" fill="${STATE_COLOURS[i]}" stroke="#999999" stroke-width="0.5"/>`;
    s += `<text x="${x + 16}" y="46" font-size="11" ${FONT}>${name}</text>\n`;
  });
  let y = PIC_TOP;
  model.bands.forEach((band, bi) => {
    const colW = BAR_W / band.buckets;
    const barH = ROW_H - 2;
    // Neighbouring buckets with the same pixel split are drawn as one rect per state.
    let runStart = 0;
    let runHeights = splitHeights(band.counts, 0, barH);
    const flush = (endBucket: number) => {
      let yy = y;
      for (let st = 0; st < STATE_COUNT; st++) {
        if (runHeights[st] === 0) continue;
        s += `<rect x="${r1(BAR_X + runStart * colW)}" y="${yy}" width="${r1((endBucket - runStart) * colW)}" height="${runHeights[st]}" fill="${STATE_COLOURS[st]}"/>`;
        yy += runHeights[st];
      }
    };
    for (let b = 1; b < band.buckets; b++) {
      const h = splitHeights(band.counts, b * STATE_COUNT, barH);
      if (h.some((v, i) => v !== runHeights[i])) {
        flush(b);
        runStart = b;
        runHeights = h;
      }
    }
    flush(band.buckets);
    const label = bandLabel(band);
    s += `\n<text x="${BAR_X + BAR_W + 8}" y="${y + barH - 2}" font-size="11" ${FONT}>${escapeXml(label)}</text>\n`;
    y += ROW_H;
    const gap = gapAfter.get(bi);
    if (gap !== undefined) {
      // A zigzag break: the gap is not drawn to scale.
      const mid = y + GAP_H / 2 - 1;
      let d = `M ${BAR_X} ${mid}`;
      for (let x = BAR_X; x < BAR_X + BAR_W; x += 8) d += ` l 4 -3 l 4 3`;
      s += `<path d="${d}" fill="none" stroke="#aaaaaa" stroke-width="1"/>`;
      s += `<text x="${BAR_X + BAR_W + 8}" y="${mid + 4}" font-size="10" fill="#777777" ${FONT}>${escapeXml(`… ${iec(gap)} unmapped …`)}</text>\n`;
      y += GAP_H;
    }
  });
  return `${s}</svg>\n`;
}
