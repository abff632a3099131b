// The SVGs the command writes, opened in a real browser: headless Debian
// chromium screenshots each one, and the PNG must have the window's size and
// show a drawing (not a blank page, not an error page).
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGrower } from './helpers/grow';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const chromium = '/usr/bin/chromium';
const TAG = String(8_000_000 + (process.pid % 1_000_000));
const WIDTH = 800;
const HEIGHT = 600;
const LONG_NAME = `/opt/a-vendor/application-server/bin/a-long-program-name-${TAG}`;

let dir = '';
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!fs.existsSync(chromium))
    execFileSync('bash', [path.join(root, 'scripts', 'setup-machine.sh')], { stdio: 'inherit' });
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-chart-'));
  for (let i = 0; i < 3; i++) {
    const c = spawn('sleep', [TAG], { stdio: 'ignore' });
    children.push(c);
  }
  // A command line as long as real ones get (a JVM's, a node script's path): a label to clip.
  children.push(spawn('sleep', [TAG], { stdio: 'ignore', argv0: LONG_NAME }));
  // Let them exec before they are measured.
  await new Promise((r) => setTimeout(r, 200));
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function pagewalk(args: string[]): void {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`pagewalk ${args.join(' ')}: ${r.stderr}`);
}

function screenshot(svg: string): Buffer {
  const png = svg.replace(/\.svg$/, '.png');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-chromium-'));
  try {
    spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        `--screenshot=${png}`,
        `--window-size=${WIDTH},${HEIGHT}`,
        `file://${svg}`,
      ],
      { cwd: dir, timeout: 90_000, stdio: 'ignore' },
    );
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
  expect(fs.existsSync(png), `chromium wrote no ${png}`).toBe(true);
  return fs.readFileSync(png);
}

interface Image {
  width: number;
  height: number;
  channels: number;
  pixels: Uint8Array;
}

/** Decodes an 8-bit RGB or RGBA PNG: IHDR, inflated IDAT chunks, scanline filters undone. */
function decodePng(png: Buffer): Image {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8); // bit depth
      channels = { 2: 3, 6: 4 }[data[9]] ?? 0;
      expect(channels, `colour type ${data[9]}`).toBeGreaterThan(0);
      expect(data[12]).toBe(0); // not interlaced
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[x - channels] : 0;
      const b = prev[x];
      const c = x >= channels ? prev[x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

interface Stats {
  nonWhite: number;
  /** Pixels of each colour asked for (exact RGB match). */
  colours: Record<string, number>;
  variance: number;
}

function stats(img: Image, colours: string[]): Stats {
  const wanted = colours.map((c) => [
    Number.parseInt(c.slice(1, 3), 16),
    Number.parseInt(c.slice(3, 5), 16),
    Number.parseInt(c.slice(5, 7), 16),
  ]);
  const counts: Record<string, number> = Object.fromEntries(colours.map((c) => [c, 0]));
  let nonWhite = 0;
  let sum = 0;
  let sumSq = 0;
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const o = i * img.channels;
    const r = img.pixels[o];
    const g = img.pixels[o + 1];
    const b = img.pixels[o + 2];
    if (r < 250 || g < 250 || b < 250) nonWhite++;
    const lum = (r + g + b) / 3;
    sum += lum;
    sumSq += lum * lum;
    wanted.forEach(([wr, wg, wb], k) => {
      if (Math.abs(r - wr) <= 2 && Math.abs(g - wg) <= 2 && Math.abs(b - wb) <= 2) counts[colours[k]]++;
    });
  }
  const mean = sum / n;
  return { nonWhite, colours: counts, variance: sumSq / n - mean * mean };
}

/** Non-white pixels in the columns [x0, x1) over the whole height. */
function inkInColumns(img: Image, x0: number, x1: number): number {
  let ink = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = x0; x < x1; x++) {
      const o = (y * img.width + x) * img.channels;
      if (img.pixels[o] < 250 || img.pixels[o + 1] < 250 || img.pixels[o + 2] < 250) ink++;
    }
  }
  return ink;
}

describe('charts in a browser', () => {
  it('keeps long labels inside the picture: the pie legend at the right edge, the first rotated bar label', () => {
    const match = `^sleep ${TAG}$|long-program-name-${TAG}`;
    const pie = path.join(dir, 'pie-long.svg');
    pagewalk(['smem', '-P', match, '--pie', 'command', '-o', pie]);
    const p = decodePng(screenshot(pie));
    expect([p.width, p.height]).toEqual([WIDTH, HEIGHT]);
    // The legend is drawn (its right half has text), and nothing reaches the last 12 columns.
    expect(inkInColumns(p, 460, WIDTH - 12)).toBeGreaterThan(500);
    expect(inkInColumns(p, WIDTH - 12, WIDTH)).toBe(0);
    // The long command line leads the bars, so its rotated label is the first, reaching left.
    const bar = path.join(dir, 'bar-long.svg');
    pagewalk(['smem', '-P', match, '--bar', 'command', '-c', 'rss', '-s', 'command', '-o', bar]);
    const svg = fs.readFileSync(bar, 'utf8');
    expect(svg.indexOf('long-program')).toBeLessThan(svg.indexOf(`>sleep ${TAG}<`));
    const b = decodePng(screenshot(bar));
    expect(inkInColumns(b, 0, 4)).toBe(0);
    expect(inkInColumns(b, 4, 60)).toBeGreaterThan(50);
  }, 120_000);

  it('renders the bar chart', () => {
    const svg = path.join(dir, 'bar.svg');
    pagewalk(['smem', '-P', `^sleep ${TAG}$`, '--bar', 'pid', '-c', 'uss pss rss', '-o', svg]);
    const img = decodePng(screenshot(svg));
    expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
    const s = stats(img, ['#0072B2', '#E69F00', '#009E73']);
    expect(s.variance).toBeGreaterThan(100);
    expect(s.nonWhite).toBeGreaterThan(WIDTH * HEIGHT * 0.01);
    // One bar colour per series, each drawn.
    for (const c of ['#0072B2', '#E69F00', '#009E73']) expect(s.colours[c], c).toBeGreaterThan(100);
  }, 120_000);

  it('renders the pie chart', () => {
    const svg = path.join(dir, 'pie.svg');
    pagewalk(['smem', '--pie', 'name', '-o', svg]);
    const img = decodePng(screenshot(svg));
    expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
    const s = stats(img, ['#0072B2']);
    // The largest slice alone covers a good part of a 220 px disc.
    expect(s.colours['#0072B2']).toBeGreaterThan(5000);
    expect(s.nonWhite).toBeGreaterThan(Math.PI * 200 * 200 * 0.9);
  }, 120_000);

  it('renders the address-space picture', () => {
    const svg = path.join(dir, 'picture.svg');
    pagewalk(['picture', String(children[0].pid), '-o', svg]);
    const img = decodePng(screenshot(svg));
    expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
    const s = stats(img, ['#D55E00', '#0072B2', '#EEEEEE']);
    expect(s.variance).toBeGreaterThan(100);
    // sleep has private pages (its data, heap, stack) and shared ones (libc).
    expect(s.colours['#D55E00']).toBeGreaterThan(500);
    expect(s.colours['#0072B2']).toBeGreaterThan(500);
  }, 120_000);
  it('renders the RAM census as a sunburst', () => {
    const svg = path.join(dir, 'ram.svg');
    pagewalk(['ram', '--no-processes', '-o', svg]);
    const img = decodePng(screenshot(svg));
    expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
    const s = stats(img, ['#0072B2', '#E69F00']);
    expect(s.variance).toBeGreaterThan(100);
    // The largest category (free memory, here) is the first colour: a wide arc of the inner ring.
    expect(s.colours['#0072B2']).toBeGreaterThan(3000);
    // The rings cover a good part of their disc.
    expect(s.nonWhite).toBeGreaterThan(Math.PI * 150 * 150 * 0.5);
  }, 120_000);

  it('renders PSS over time from a record', async () => {
    // Two processes whose memory grows between three samples: two rising lines.
    const growers = [await startGrower(22_000), await startGrower(22_000)];
    try {
      const record = path.join(dir, 'record.jsonl');
      const sample = (extra: string[]) => pagewalk(['record', '-n', '1', '-P', `grow 22000$`, '-o', record, ...extra]);
      sample([]);
      await growers[0].grow(2048);
      await growers[1].grow(1024);
      sample(['-a']);
      await growers[0].grow(2048);
      sample(['-a']);
      const svg = path.join(dir, 'timeline.svg');
      pagewalk(['diff', record, '-o', svg]);
      const img = decodePng(screenshot(svg));
      expect([img.width, img.height]).toEqual([WIDTH, HEIGHT]);
      const s = stats(img, ['#0072B2', '#E69F00']);
      expect(s.variance).toBeGreaterThan(100);
      // Each line crosses most of the plot, 2.5 px wide.
      for (const c of ['#0072B2', '#E69F00']) expect(s.colours[c], c).toBeGreaterThan(500);
    } finally {
      for (const g of growers) await g.kill();
    }
  }, 120_000);
});
