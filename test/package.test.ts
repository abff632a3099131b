// The published package: `npm pack`, install the tarball into an empty
// project, then load it there with both require and import.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
let dir: string;

beforeAll(() => {
  execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewalk-pack-'));
  const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--ignore-scripts'], {
    cwd: root,
    encoding: 'utf8',
  });
  const tarball = path.join(dir, out.trim().split('\n').pop() as string);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  // --offline would miss node-addon-api on a cold cache; the registry is reachable here.
  execFileSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: dir, stdio: 'ignore' });
}, 300_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('ships types, native sources and the build, and loads with require()', () => {
  const pkg = path.join(dir, 'node_modules', 'pagewalk');
  for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'binding.gyp', 'native/binding.cc']) {
    expect(fs.existsSync(path.join(pkg, f))).toBe(true);
  }
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      "const p=require('pagewalk');p.processMemory(process.pid).then(r=>console.log(JSON.stringify({rss:r.rss>0,src:r.source})))",
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  expect(JSON.parse(out)).toEqual({ rss: true, src: 'pagemap' });
});

it('installs the pagewalk command', () => {
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  const out = execFileSync(path.join(dir, 'node_modules', '.bin', 'pagewalk'), ['--version'], { encoding: 'utf8' });
  expect(out.trim()).toBe(version);
});

it('loads with import', () => {
  fs.writeFileSync(
    path.join(dir, 'use.mjs'),
    "import { decodeEntry, processMemory } from 'pagewalk';\nimport pw from 'pagewalk';\nconst r = await processMemory(process.pid);\nconsole.log(JSON.stringify({ same: pw.processMemory === processMemory, present: decodeEntry(1n << 63n).present, pss: r.pss > 0 }));\n",
  );
  const out = execFileSync(process.execPath, ['use.mjs'], { cwd: dir, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({ same: true, present: true, pss: true });
});

it('loads the library alone: the exporter, YAML and the command only through their subpaths or when used', () => {
  // prom-client and yaml were 104 of the 188 modules require('pagewalk') loaded.
  const probe = `
const heavy = () => Object.keys(require.cache).filter((f) =>
  /node_modules\\/(prom-client|yaml|commander)\\//.test(f) || /pagewalk\\/dist\\/(exporter|cli\\/)/.test(f));
const p = require('pagewalk');
const before = heavy();
const modules = Object.keys(require.cache).length;
p.parseGroupConfig('groups:\\n  - name: "{{name}}"\\n');
const afterConfig = heavy().filter((f) => f.includes('/yaml/')).length > 0;
const { Exporter } = require('pagewalk/exporter');
const { buildProgram } = require('pagewalk/cli');
console.log(JSON.stringify({ before, modules, afterConfig, exporter: typeof Exporter, cli: buildProgram().name() }));
`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', probe], { cwd: dir, encoding: 'utf8' }));
  expect(out.before).toEqual([]);
  // The library's own modules and node-gyp-build: well under the 188 of before.
  expect(out.modules).toBeLessThan(60);
  expect(out).toMatchObject({ afterConfig: true, exporter: 'function', cli: 'pagewalk' });
});

it('imports the subpaths as ES modules', () => {
  fs.writeFileSync(
    path.join(dir, 'subpaths.mjs'),
    "import { Exporter } from 'pagewalk/exporter';\nimport exporter from 'pagewalk/exporter';\nimport { main } from 'pagewalk/cli';\nconsole.log(JSON.stringify({ same: exporter.Exporter === Exporter, exporter: typeof Exporter, main: typeof main }));\n",
  );
  const out = execFileSync(process.execPath, ['subpaths.mjs'], { cwd: dir, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({ same: true, exporter: 'function', main: 'function' });
});
