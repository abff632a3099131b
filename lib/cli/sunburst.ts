// A sunburst of a tree of sizes (pagewalk ram -o FILE.svg): the categories
// as the inner ring, their parts around them. Pure: data in, SVG out.
import { escapeXml, iec, PALETTE, percent } from './render';

export interface SunburstNode {
  name: string;
  bytes: number;
  children?: SunburstNode[];
}

const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';
const r1 = (n: number) => Math.round(n * 10) / 10;

/** A colour mixed with white: the outer rings are lighter shades of their category. */
function lighten(hex: string, amount: number): string {
  const c = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  return `#${c
    .map((v) =>
      Math.round(v + (255 - v) * amount)
        .toString(16)
        .padStart(2, '0'),
    )
    .join('')}`;
}

/** An annular sector from angle a0 to a1 between radii r0 and r1. */
function sector(cx: number, cy: number, ri: number, ro: number, a0: number, a1: number): string {
  const p = (r: number, a: number) => `${r1(cx + r * Math.cos(a))} ${r1(cy + r * Math.sin(a))}`;
  if (a1 - a0 >= 2 * Math.PI - 1e-9) {
    // A whole ring: two half arcs each way.
    const m = a0 + Math.PI;
    return `M ${p(ro, a0)} A ${ro} ${ro} 0 1 1 ${p(ro, m)} A ${ro} ${ro} 0 1 1 ${p(ro, a0)} Z M ${p(ri, a0)} A ${ri} ${ri} 0 1 0 ${p(ri, m)} A ${ri} ${ri} 0 1 0 ${p(ri, a0)} Z`;
  }
  const large = a1 - a0 > Math.PI ? 1 : 0;
  return `M ${p(ro, a0)} A ${ro} ${ro} 0 ${large} 1 ${p(ro, a1)} L ${p(ri, a1)} A ${ri} ${ri} 0 ${large} 0 ${p(ri, a0)} Z`;
}

/**
 * The tree's children as the inner ring (one palette colour each, largest
 * first as given) and `depth - 1` rings of their descendants in lighter
 * shades; a legend lists the categories. Slivers under 0.2° are not drawn.
 */
export function sunburstSvg(title: string, root: SunburstNode, depth = 3, width = 800, height = 600): string {
  const total = root.bytes;
  const cx = 280;
  const cy = height / 2 + 20;
  const ring = Math.min(230, height / 2 - 50) / (depth + 0.5);
  let s = `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n<rect width="100%" height="100%" fill="#ffffff"/>\n`;
  s += `<text x="${width / 2}" y="30" text-anchor="middle" font-size="18" ${FONT}>${escapeXml(title)}</text>\n`;
  const draw = (n: SunburstNode, level: number, a0: number, colour: string, path: string) => {
    const a1 = a0 + (total > 0 ? (n.bytes / total) * 2 * Math.PI : 0);
    if (a1 - a0 < (0.2 * Math.PI) / 180) return;
    const ri = ring * (level - 0.5);
    const ro = ring * (level + 0.5);
    const tip = escapeXml(`${path}${n.name}: ${iec(n.bytes)} (${percent(n.bytes, total)})`);
    s += `<path d="${sector(cx, cy, ri, ro, a0, a1)}" fill="${colour}" fill-rule="evenodd" stroke="#ffffff" stroke-width="1"><title>${tip}</title></path>\n`;
    if (level >= depth) return;
    let a = a0;
    for (const c of n.children ?? []) {
      draw(c, level + 1, a, lighten(colour, 0.35 * level), `${path}${n.name} › `);
      a += total > 0 ? (c.bytes / total) * 2 * Math.PI : 0;
    }
  };
  let angle = -Math.PI / 2;
  const categories = root.children ?? [];
  categories.forEach((c, i) => {
    draw(c, 1, angle, PALETTE[i % PALETTE.length], '');
    angle += total > 0 ? (c.bytes / total) * 2 * Math.PI : 0;
  });
  categories.forEach((c, i) => {
    const ly = 80 + i * 22;
    s += `<rect x="560" y="${ly - 11}" width="14" height="14" fill="${PALETTE[i % PALETTE.length]}"/>`;
    s += `<text x="580" y="${ly}" font-size="12" ${FONT}>${escapeXml(`${c.name} ${iec(c.bytes)} (${percent(c.bytes, total)})`)}</text>\n`;
  });
  if (total === 0) s += `<text x="${cx}" y="${cy}" text-anchor="middle" font-size="14" ${FONT}>no data</text>\n`;
  return `${s}</svg>\n`;
}
