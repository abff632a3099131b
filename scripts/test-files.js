// The subsets of the test suite that npm scripts run, each listed once.
// Prints the named list space-separated, for use as $(node scripts/test-files.js NAME).
//
//   portable  the library against the kernel, no command, browser or tools:
//             run again under Node 22 and 24 (test:node22, test:node24)
//   sanitize  the suites that drive the addon hardest, run under ASan and
//             UBSan (sanitize:ci)

const portable = [
  'test/pagemap.test.ts',
  'test/accounting.test.ts',
  'test/maps.test.ts',
  'test/facts.test.ts',
  'test/kubernetes.test.ts',
  'test/ram-parsers.test.ts',
];

const lists = {
  portable,
  sanitize: [
    ...portable,
    'test/kpage.test.ts',
    'test/hardening.test.ts',
    'test/property.test.ts',
    'test/lifecycle.test.ts',
    'test/leaks.test.ts',
    'test/fallbacks.test.ts',
    'test/races.test.ts',
    'test/shared-frames.test.ts',
    'test/limits.test.ts',
    'test/ram.test.ts',
  ],
};

const list = lists[process.argv[2]];
if (!list) {
  process.stderr.write(`usage: node scripts/test-files.js ${Object.keys(lists).join('|')}\n`);
  process.exit(2);
}
process.stdout.write(`${list.join(' ')}\n`);
