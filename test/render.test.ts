import { describe, expect, it } from 'vitest';
import {
  addEntries,
  addPages,
  BAND_BUCKETS,
  barChartSvg,
  blockBar,
  escapeXml,
  formatSize,
  human,
  iec,
  kb,
  lineChartSvg,
  mergeSmallSlices,
  movePages,
  newBand,
  niceStep,
  PageState,
  percent,
  pictureLayout,
  pictureSvg,
  pieChartSvg,
  renderCsv,
  renderTable,
  STATE_COUNT,
  terminalBars,
  terminalPie,
} from '../lib/cli/render';
import { signedSize } from '../lib/cli/timeline';

/** A minimal XML well-formedness check: every tag closes in order, attributes quoted, entities known. */
function assertWellFormed(svg: string): void {
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([<>])/g;
  let last = 0;
  for (let m = tag.exec(body); m; m = tag.exec(body)) {
    const text = body.slice(last, m.index);
    expect(text).not.toMatch(/&(?!(?:lt|gt|amp|quot|apos|#\d+);)/);
    last = tag.lastIndex;
    if (m[5]) throw new Error(`stray ${m[5]} at ${m.index}: ${body.slice(m.index - 40, m.index + 40)}`);
    if (m[4]) continue;
    if (m[1]) expect(stack.pop()).toBe(m[2]);
    else stack.push(m[2]);
  }
  expect(stack).toEqual([]);
  expect(body.startsWith('<svg')).toBe(true);
}

describe('units', () => {
  it('truncates to kB like the kernel and smem', () => {
    expect(kb(0)).toBe(0);
    expect(kb(1023)).toBe(0);
    expect(kb(4096)).toBe(4);
    expect(kb(4096 + 1023)).toBe(4);
  });

  it('abbreviates like smem -k', () => {
    expect(human(0)).toBe('0');
    // Under a KiB the unit is bytes, written: top's header once said "change -84.0".
    expect(human(512)).toBe('512B');
    expect(human(84)).toBe('84B');
    expect(signedSize(-84, 'human')).toBe('-84B');
    expect(human(1536)).toBe('1.5K');
    expect(human(1.2 * 1024 * 1024)).toBe('1.2M');
    expect(human(3 * 2 ** 30)).toBe('3.0G');
    expect(human(2 ** 40)).toBe('1.0T');
  });

  it('prints binary units for labels', () => {
    expect(iec(4096)).toBe('4 KiB');
    expect(iec(1536)).toBe('1.5 KiB');
    expect(iec(128 * 2 ** 40)).toBe('128 TiB');
    expect(iec(100)).toBe('100 B');
  });

  it('formats percentages and the chosen style', () => {
    expect(percent(1, 4)).toBe('25.00%');
    expect(percent(1, 0)).toBe('N/A');
    expect(formatSize(8192, 'kb')).toBe('8');
    expect(formatSize(8192, 'human')).toBe('8.0K');
    expect(formatSize(8192, 'percent', 16384)).toBe('50.00%');
  });

  it('picks round axis steps', () => {
    expect(niceStep(10)).toBe(2);
    expect(niceStep(7)).toBe(2);
    expect(niceStep(1000)).toBe(200);
    expect(niceStep(0)).toBe(1);
  });
});

describe('tables', () => {
  it('aligns numbers right and text left, trims line ends', () => {
    const t = renderTable(
      [
        { header: 'PID', align: 'right' },
        { header: 'Command', align: 'left' },
        { header: 'PSS', align: 'right' },
      ],
      [
        ['1', 'init', '100'],
        ['12345', 'a longer command', '7'],
      ],
    );
    expect(t).toBe(
      ['  PID Command          PSS', '    1 init             100', '12345 a longer command   7', ''].join('\n'),
    );
  });

  it('drops the header and adds a totals row under a rule', () => {
    const t = renderTable(
      [
        { header: 'A', align: 'right' },
        { header: 'B', align: 'right' },
      ],
      [['1', '2']],
      { header: false, totals: ['10', '20'] },
    );
    expect(t).toBe(' 1  2\n-----\n10 20\n');
  });

  it('keeps control characters out of rows', () => {
    expect(renderTable([{ header: 'C', align: 'left' }], [['a\nb\tc']])).toBe('C\na b c\n');
  });

  it('cuts cells to maxWidth', () => {
    const t = renderTable([{ header: 'C', align: 'left', maxWidth: 4 }], [['abcdefgh']]);
    expect(t).toBe('C\nabcd\n');
  });

  it('quotes CSV cells that need it', () => {
    expect(
      renderCsv(
        ['a', 'b'],
        [
          [1, 'x,y'],
          [2, 'say "hi"'],
        ],
      ),
    ).toBe('a,b\r\n1,"x,y"\r\n2,"say ""hi"""\r\n');
    expect(renderCsv(null, [[1]])).toBe('1\r\n');
  });
});

describe('charts', () => {
  const bar = {
    title: 'uss, pss by pid <&>',
    labels: ['1', '22', 'a "quoted" one'],
    series: [
      { name: 'USS', values: [1024, 2 ** 20, 3 * 2 ** 20] },
      { name: 'PSS', values: [2048, 2 ** 21, 4 * 2 ** 20] },
    ],
  };

  it('draws one bar per label and series, well-formed and escaped', () => {
    const svg = barChartSvg(bar);
    assertWellFormed(svg);
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(6);
    expect(svg).toContain('uss, pss by pid &lt;&amp;&gt;');
    expect(svg).toContain('a &quot;quoted&quot; one');
    expect(svg).toContain('>MiB<');
  });

  it('scales bar heights to the values', () => {
    const svg = barChartSvg({
      title: 't',
      labels: ['a', 'b'],
      series: [{ name: 'S', values: [2 ** 20, 2 * 2 ** 20] }],
    });
    const heights = [
      ...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="[^"]*"><title>/g),
    ].map((m) => Number(m[1]));
    expect(heights).toHaveLength(2);
    expect(heights[1] / heights[0]).toBeCloseTo(2, 1);
  });

  it('draws pie slices whose angles follow the values', () => {
    const svg = pieChartSvg({ title: 'pss', labels: ['a', 'b', 'c'], values: [50, 30, 20] });
    assertWellFormed(svg);
    expect(svg.match(/<path d="M/g)).toHaveLength(3);
    // The legend: the label, and under it the size and the share.
    expect(svg).toMatch(/>a<\/text>\n<text [^>]*>50 B \(50.00%\)</);
    // Only the 50% slice... and nothing above half takes the large arc.
    expect(svg.match(/ 0 1 1 /g) ?? []).toHaveLength(0);
  });

  it('draws a single slice as a full circle', () => {
    const svg = pieChartSvg({ title: 'x', labels: ['only'], values: [5] });
    assertWellFormed(svg);
    expect(svg).toContain('<circle');
  });

  it('merges small slices into "other"', () => {
    const merged = mergeSmallSlices({ title: '', labels: ['big', 's1', 's2', 'zero'], values: [1000, 5, 5, 0] });
    expect(merged.labels).toEqual(['big', 'other']);
    expect(merged.values).toEqual([1000, 10]);
  });

  it('draws terminal bars in eighth-cell steps', () => {
    expect(blockBar(1, 1, 4)).toBe('████');
    expect(blockBar(1, 2, 4)).toBe('██');
    expect(blockBar(1, 16, 2)).toBe('▏');
    expect(blockBar(0, 5, 10)).toBe('');
    const text = terminalBars(bar, 60);
    expect(text.split('\n')[0]).toBe(bar.title);
    expect(text).toContain('4.0M');
    const widest = Math.max(...text.split('\n').map((l) => [...l].length));
    expect(widest).toBeLessThanOrEqual(60);
  });

  it('draws a terminal pie as a split bar with a legend', () => {
    const text = terminalPie({ title: 'p', labels: ['a', 'b'], values: [3, 1] }, 42);
    const lines = text.trimEnd().split('\n');
    expect([...lines[1]].length).toBe(40);
    expect([...lines[1]].filter((c) => c === '█').length).toBe(30);
    expect(lines[2]).toContain('75.00%');
  });
});

/** Raw entries: bit 63 present, 62 swapped, 56 exclusive. */
const PRESENT = 1n << 63n;
const SWAPPED = 1n << 62n;
const EXCL = 1n << 56n;

describe('address-space picture', () => {
  it('counts pages into buckets by state without per-page objects', () => {
    const band = newBand(0x10000n, 0x10000n + 8n * 4096n, 'rw-p', '[heap]');
    expect(band.buckets).toBe(8);
    addEntries(band, 0, new BigUint64Array([PRESENT | EXCL | 5n, PRESENT | 7n, SWAPPED | 3n, 0n]));
    addPages(band, 4, 4, PageState.None);
    const at = (b: number, s: number) => band.counts[b * STATE_COUNT + s];
    expect(at(0, PageState.Exclusive)).toBe(1);
    expect(at(1, PageState.Shared)).toBe(1);
    expect(at(2, PageState.Swapped)).toBe(1);
    expect(at(3, PageState.None)).toBe(1);
    expect(at(7, PageState.None)).toBe(1);
    movePages(band, 1, 1, PageState.Shared, PageState.Zero);
    expect(at(1, PageState.Shared)).toBe(0);
    expect(at(1, PageState.Zero)).toBe(1);
  });

  it('keeps a huge mapping in a bounded number of buckets', () => {
    const pages = 2 ** 35; // 128 TiB
    const band = newBand(0n, BigInt(pages) * 4096n, 'rw-p', '');
    expect(band.buckets).toBe(BAND_BUCKETS);
    addPages(band, 0, pages, PageState.None);
    let total = 0;
    for (const v of band.counts) total += v;
    expect(total).toBe(pages);
    // An entry near the end lands in the last bucket.
    addEntries(band, pages - 1, new BigUint64Array([PRESENT | EXCL]));
    expect(band.counts[(BAND_BUCKETS - 1) * STATE_COUNT + PageState.Exclusive]).toBe(1);
  });

  it('compresses gaps between mappings to one labelled row', () => {
    const a = newBand(0x1000n, 0x3000n, 'r-xp', '/bin/x');
    const b = newBand(0x3000n, 0x4000n, 'rw-p', '/bin/x');
    const stack = newBand(0x7ffffff00000n, 0x7ffffff21000n, 'rw-p', '[stack]');
    const vsys = newBand(0xffffffffff600000n, 0xffffffffff601000n, '--xp', '[vsyscall]');
    addEntries(a, 0, new BigUint64Array([PRESENT | EXCL, PRESENT]));
    const model = { title: 'pid 1 <test>', bands: [a, b, stack, vsys] };
    const layout = pictureLayout(model);
    // a and b touch: no gap; two gaps after, whatever their size.
    expect(layout.gaps.map((g) => g.afterBand)).toEqual([1, 2]);
    expect(layout.gaps[0].bytes).toBe(0x7ffffff00000 - 0x4000);
    expect(layout.height).toBeLessThan(300);
    const svg = pictureSvg(model);
    assertWellFormed(svg);
    expect(svg).toContain('… 128.0 TiB unmapped …');
    expect(svg).toContain('… 16.0 EiB unmapped …');
    expect(svg).toContain('pid 1 &lt;test&gt;');
    expect(svg).toContain('[vsyscall]');
  });

  it('draws runs of equal buckets as single rectangles', () => {
    const band = newBand(0n, BigInt(BAND_BUCKETS * 100) * 4096n, 'rw-p', '');
    addPages(band, 0, BAND_BUCKETS * 50, PageState.Exclusive);
    addPages(band, BAND_BUCKETS * 50, BAND_BUCKETS * 50, PageState.None);
    const svg = pictureSvg({ title: 't', bands: [band] });
    // Two runs (exclusive, then not present) over 512 pixel columns.
    const bandRects = svg.match(/<rect x="[\d.]+" y="64"/g) ?? [];
    expect(bandRects).toHaveLength(2);
  });

  it('gives a rare state at least one pixel', () => {
    const band = newBand(0n, 1000n * 4096n, 'rw-p', '', 1);
    addPages(band, 0, 999, PageState.None);
    addPages(band, 999, 1, PageState.Swapped);
    const svg = pictureSvg({ title: 't', bands: [band] });
    expect(svg).toContain('height="1" fill="#CC79A7"');
  });

  it('escapes XML special characters', () => {
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  });
});

describe('PSS over time', () => {
  it('draws a line per series, broken where a series has no value', () => {
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const svg = lineChartSvg({
      title: 'PSS <over> time',
      times: [t0, t0 + 2000, t0 + 4000, t0 + 6000],
      series: [
        { name: 'steady', values: [10 << 20, 10 << 20, 10 << 20, 10 << 20] },
        // Started late, gone for one sample, back.
        { name: 'comes & goes', values: [null, 20 << 20, null, 30 << 20] },
        { name: 'runs', values: [1 << 20, 2 << 20, null, null] },
      ],
    });
    assertWellFormed(svg);
    expect(svg).toContain('PSS &lt;over&gt; time');
    expect(svg).toContain('comes &amp; goes');
    // steady: one polyline through 4 points; runs: one through 2; comes & goes: two lone points, no line.
    const lines = [...svg.matchAll(/<polyline points="([^"]+)"/g)].map((m) => m[1].split(' ').length);
    expect(lines).toEqual([4, 2]);
    expect(svg.match(/<circle /g)).toHaveLength(4 + 2 + 2);
    // 30 MiB on an axis in MiB; ticks labelled with the time of day.
    expect(svg).toContain('PSS (MiB)');
    expect(svg).toContain('>00:00:06.0<');
  });

  it('puts a single sample in the middle and says when there is nothing', () => {
    const one = lineChartSvg({ title: 't', times: [0], series: [{ name: 'a', values: [4096] }] });
    assertWellFormed(one);
    expect(one).toMatch(/<circle cx="425" /);
    const none = lineChartSvg({ title: 't', times: [0, 1000], series: [] });
    expect(none).toContain('>no data<');
  });
});
