// pagewalk record and pagewalk diff on grow fixtures that add and drop a
// known number of pages between samples: the differences must be exactly
// what the fixtures did, to the page, per process and per mapping.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseRecord } from '../../lib/index';
import { cli, ok, root, run, TAG } from '../helpers/cli';
import { type Grower, startGrower } from '../helpers/grow';

const PAGE = 4096;
const RESERVE = 21_000 + (Number(TAG) % 1000);
const MATCH = `grow ${RESERVE}$`;
const growers: Grower[] = [];
let dir = '';

async function grower(): Promise<Grower> {
  const g = await startGrower(RESERVE);
  growers.push(g);
  return g;
}

beforeAll(() => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-record-'));
});

afterEach(async () => {
  await Promise.all(growers.splice(0).map((g) => g.kill()));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface JsonChange {
  pid: number;
  status: string;
  delta: Record<string, number>;
  mappings?: { path: string; status: string; delta: Record<string, number> }[];
}

function diffJson(args: string[]): {
  processes: JsonChange[];
  seconds: number;
  totals: { delta: Record<string, number> };
} {
  return JSON.parse(ok(['diff', ...args, '--json']));
}

const anon = (c: JsonChange | undefined) => c?.mappings?.find((m) => m.path === '<anonymous>');

describe('pagewalk record and diff', () => {
  it('record -a adds samples; diff gives the growth between them to the page', async () => {
    const a = await grower();
    const b = await grower();
    const file = path.join(dir, 'grow.jsonl');
    const record = (extra: string[]) =>
      ok(['record', '-n', '1', '-m', '--by', 'exe', '-P', MATCH, '-o', file, ...extra]);
    record([]);
    await a.grow(300);
    await b.grow(50);
    record(['-a']);
    await a.shrink(120);
    record(['-a']);

    const samples = parseRecord(fs.readFileSync(file, 'utf8'));
    expect(samples).toHaveLength(3);
    for (const s of samples) {
      expect(s.processes.map((p) => p.pid).sort()).toEqual([a.pid, b.pid].sort());
      expect(s.observer).toBe('excluded');
      expect(s.processes[0].mappings?.length).toBeGreaterThan(0);
    }
    const times = samples.map((s) => Date.parse(s.time));
    expect(times[1]).toBeGreaterThanOrEqual(times[0]);
    expect(times[2]).toBeGreaterThanOrEqual(times[1]);

    // Samples 1 and 2: a grew by 300 pages, b by 50; a, the larger, first.
    const grew = diffJson([file, '--from', '1', '--to', '2']);
    expect(grew.processes.map((p) => p.pid).slice(0, 2)).toEqual([a.pid, b.pid]);
    const [pa, pb] = grew.processes;
    // RSS counts each page once whoever maps it; the [anon] mappings are the
    // fixtures' own, so their PSS and USS move by exactly the pages touched.
    expect(pa.delta.rss).toBe(300 * PAGE);
    expect(pb.delta.rss).toBe(50 * PAGE);
    expect(pa.status).toBe('grew');
    expect(anon(pa)).toMatchObject({ status: 'grew', delta: { pss: 300 * PAGE, uss: 300 * PAGE, rss: 300 * PAGE } });
    expect(anon(pb)?.delta).toMatchObject({ pss: 50 * PAGE, uss: 50 * PAGE, rss: 50 * PAGE, vss: 0 });
    expect(pa.mappings?.[0].path).toBe('<anonymous>');

    // Samples 2 and 3: a shrank by 120 pages.
    const shrank = diffJson([file, '--from', '2', '--to', '-1']);
    const sa = shrank.processes.find((p) => p.pid === a.pid);
    expect(sa?.status).toBe('shrank');
    expect(sa?.delta.rss).toBe(-120 * PAGE);
    expect(anon(sa)?.delta).toMatchObject({ pss: -120 * PAGE, uss: -120 * PAGE, rss: -120 * PAGE });

    // By default one record compares its first sample with its last.
    const whole = diffJson([file]);
    expect(anon(whole.processes.find((p) => p.pid === a.pid))?.delta.pss).toBe(180 * PAGE);
    expect(whole.totals.delta.rss).toBe(230 * PAGE);

    // The text report: largest first, the process then its mapping paths.
    const text = ok(['diff', file, '--from', '1', '--to', '2', '-s', 'rss']);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^\S+ -> \S+ \(\d+\.\d s\); sorted by RSS change, sizes in kB$/);
    expect(lines[1]).toMatch(/^Total RSS: \d+ -> \d+ \(\+1400\); 0 started, 0 exited$/);
    const rowA = lines.findIndex((l) => l.trim().startsWith(`${a.pid} `));
    expect(lines[rowA]).toMatch(new RegExp(`^\\s*${a.pid} grew\\s+\\d+\\s+\\d+\\s+\\+1200\\s`));
    expect(lines[rowA + 1]).toMatch(/^\s+grew\s+\d+\s+\d+\s+\+1200\s+\+1200\s+\+1200\s+0\s+<anonymous>$/);
    expect(lines.findIndex((l) => l.trim().startsWith(`${b.pid} `))).toBeGreaterThan(rowA);
    expect(
      ok(['diff', file, '--from', '1', '--to', '2', '-l', '1'])
        .trim()
        .split('\n')
        .filter((l) => /^\s*\d+ /.test(l)),
    ).toHaveLength(1);

    // Grouped by name, the two fixtures are one group.
    const groups = JSON.parse(ok(['diff', file, '--from', '1', '--to', '2', '--by', 'name', '--json']));
    expect(groups.groups).toHaveLength(1);
    expect(groups.groups[0]).toMatchObject({ key: 'grow', delta: { rss: 350 * PAGE } });
    // Grouped by executable as snapshot() grouped them when recorded.
    const exe = JSON.parse(ok(['diff', file, '--from', '1', '--to', '2', '--by', 'exe', '--json']));
    expect(samples[0].groupBy).toBe('exe');
    expect(exe.groups).toHaveLength(1);
    expect(exe.groups[0]).toMatchObject({
      key: path.join(root, 'test', 'fixtures', 'bin', 'grow'),
      delta: { rss: 350 * PAGE },
    });
    expect(exe.groups[0].pidsAfter.sort()).toEqual([a.pid, b.pid].sort());
    // What the group alone maps grew by the private pages it touched.
    expect(exe.groups[0].only.delta).toBe(350 * PAGE);
    expect(exe.groups[0].only.after - exe.groups[0].only.before).toBe(350 * PAGE);
    const exeText = ok(['diff', file, '--from', '1', '--to', '2', '--by', 'exe']).split('\n');
    expect(exeText[3]).toMatch(/\bdOnly\s+Exe$/);
    expect(exeText[4]).toMatch(/\s\+1400\s+\S+\/grow$/);
    // Grouped here by name, from the processes: nothing says what the group alone maps.
    expect(groups.groups[0].only).toBeUndefined();
    expect(run(['diff', file, '--by', 'cgroup']).stderr).toMatch(/was not grouped by cgroup/);
  });

  it('compares the last samples of two records, and sees processes start and exit', async () => {
    const a = await grower();
    const before = path.join(dir, 'before.jsonl');
    const after = path.join(dir, 'after.jsonl');
    ok(['record', '-n', '1', '-P', MATCH, '-o', before]);
    const b = await grower();
    await b.grow(20);
    await a.kill();
    ok(['record', '-n', '1', '-P', MATCH, '-o', after]);
    const d = JSON.parse(ok(['diff', before, after, '--json']));
    expect(d).toMatchObject({ started: 1, exited: 1 });
    const status = Object.fromEntries(d.processes.map((p: JsonChange) => [p.pid, p.status]));
    expect(status).toEqual({ [a.pid]: 'exited', [b.pid]: 'started' });
    // Without -m the samples have no mappings, and so neither has the diff.
    expect(d.processes[0].mappings).toBeUndefined();
  });

  it('diff uses the complete samples of a recording cut short, and warns about the rest', async () => {
    await grower();
    const whole = path.join(dir, 'whole.jsonl');
    ok(['record', '-n', '3', '-d', '0', '-P', MATCH, '-o', whole]);
    const lines = fs.readFileSync(whole, 'utf8').split('\n');
    // A crash or a kill mid-write: the third sample's line stops half way, with no newline.
    const cut = path.join(dir, 'cut.jsonl');
    fs.writeFileSync(cut, `${lines[0]}\n${lines[1]}\n${lines[2].slice(0, lines[2].length >> 1)}`);
    const r = run(['diff', cut, '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `^pagewalk: warning: ${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3 is not a whole line of JSON \\(.*\\): a recording cut short\\? It is left out; the 2 complete samples before it are used\n$`,
      ),
    );
    // The same difference as the first two samples of the whole record.
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(ok(['diff', whole, '--from', '1', '--to', '2', '--json'])));
  });

  it('names anonymous memory <anonymous>, as smem does, and reads records that said [anon]', async () => {
    await grower();
    const line = ok(['record', '-n', '1', '-d', '0', '-m', '-P', MATCH]);
    expect(line).toContain('"path":"<anonymous>"');
    expect(line).not.toContain('"path":"[anon]"');
    const old = parseRecord(line.replaceAll('"path":"<anonymous>"', '"path":"[anon]"'));
    const paths = old[0].processes[0].mappings?.map((m) => m.path) ?? [];
    expect(paths).toContain('<anonymous>');
    expect(paths).not.toContain('[anon]');
  });

  it('records N samples to stdout', async () => {
    await grower();
    const out = ok(['record', '-n', '3', '-d', '0', '-P', MATCH]);
    const samples = parseRecord(out);
    expect(samples).toHaveLength(3);
    expect(samples.every((s) => s.processes.length === 1 && s.meminfo && s.meminfo.MemTotal > 0)).toBe(true);
  });

  it('records until Ctrl-C, leaving whole lines', async () => {
    await grower();
    // An hour between samples: it ends only because of the signal.
    const child = spawn(process.execPath, [cli, 'record', '-d', '3600', '-P', MATCH], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.endsWith('\n')) resolve();
      });
    });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(err).toBe('');
    expect(parseRecord(out)).toHaveLength(1);
  });

  it('says what is wrong with its arguments and files', () => {
    const one = path.join(dir, 'one.jsonl');
    ok(['record', '-n', '1', '-P', '^no-such-process-at-all$', '-o', one]);
    // One sample is said to be one sample; --from and --to that pick the same one are a usage error.
    expect(run(['diff', one])).toMatchObject({
      code: 1,
      stderr: `pagewalk: ${one} has one sample: diff compares two (record -n 2 or more, or give a second record)\n`,
    });
    expect(run(['diff', one, '--from', '1', '--to', '-1']).stderr).toMatch(/--from and --to pick the same sample/);
    expect(run(['diff', one, '--from', '1', '--to', '-1']).code).toBe(2);
    expect(run(['diff', one, one, '--to', '2']).stderr).toMatch(/--to 2: .* has 1 sample$/m);
    expect(run(['diff', path.join(dir, 'missing.jsonl')])).toMatchObject({ code: 1 });
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, `${fs.readFileSync(one, 'utf8')}{"not": "a sample"}\n`);
    expect(run(['diff', bad]).stderr).toMatch(/bad\.jsonl:2: not a pagewalk sample/);
    expect(run(['diff', bad]).code).toBe(1);
    // A line cut short anywhere but at the end is an error too.
    const torn = path.join(dir, 'torn.jsonl');
    const sample = fs.readFileSync(one, 'utf8');
    fs.writeFileSync(torn, `${sample}${sample.slice(0, 40)}\n${sample}`);
    expect(run(['diff', torn])).toMatchObject({ code: 1, stderr: expect.stringMatching(/torn\.jsonl:2: /) });
    expect(run(['record', '-a']).code).toBe(2);
    expect(run(['record', '-d', 'soon']).code).toBe(2);
  });
});
