// pagewalk serve: the figures as a Prometheus exporter over HTTP (GET /metrics).
import type * as http from 'node:http';
import type { Command } from 'commander';
import { GROUP_BY, type Grouping } from '../../groups';
import { CliError, EXIT_RUNTIME, usage } from '../errors';
import { loadGrouping } from '../grouping';
import { addKubeLogsOption, checkKubeLogs, parseGroupBy, parseSeconds } from '../options';

interface ServeOptions {
  listen: string;
  groupBy: string;
  config?: string;
  minInterval: string;
  maxScrapeSeconds: string;
  perProcess?: boolean;
  maxSeries: string;
  kubeLogs: string;
  ram?: boolean;
}

/** HOST:PORT, [IPv6]:PORT. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) throw usage(`invalid --listen "${text}": expected HOST:PORT, e.g. 127.0.0.1:9497`);
  return { host: m[1], port };
}

const HOME = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>pagewalk exporter</title></head>
<body><h1>pagewalk exporter</h1>
<p>Exact RSS, PSS, USS, swap and group memory of this machine's processes, from /proc/PID/pagemap.</p>
<p><a href="metrics">Metrics</a></p></body></html>
`;

async function serveCommand(o: ServeOptions, cmd: Command): Promise<void> {
  const { host, port } = parseListen(o.listen);
  if (o.config !== undefined && cmd.getOptionValueSource('groupBy') === 'cli')
    throw usage('--config and --group-by exclude each other');
  const grouping: Grouping = o.config !== undefined ? loadGrouping(o.config) : parseGroupBy(o.groupBy, '--group-by');
  checkKubeLogs(grouping, o.kubeLogs);
  const maxSeries = Number(o.maxSeries);
  if (!/^\d+$/.test(o.maxSeries)) throw usage(`invalid --max-series "${o.maxSeries}": expected a count`);
  // Loaded here, not when the program starts: the exporter (prom-client) and
  // node:http (with tls, crypto and zlib) add 7 MB of RSS to every other command.
  const { Exporter } = require('../../exporter') as typeof import('../../exporter');
  const { createServer } = require('node:http') as typeof http;
  const exporter = new Exporter({
    groupBy: grouping,
    minIntervalMs: parseSeconds(o.minInterval, '--min-interval'),
    maxSnapshotMs: parseSeconds(o.maxScrapeSeconds, '--max-scrape-seconds'),
    perProcess: Boolean(o.perProcess),
    maxSeries,
    kubeLogs: o.kubeLogs,
    ram: Boolean(o.ram),
  });

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: see /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('GET only\n');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(HOME);
      return;
    }
    exporter.scrape().then(
      (text) => res.writeHead(200, { 'Content-Type': exporter.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${err.message}\n`),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'EADDRINUSE' ? 'address already in use' : e.code === 'EACCES' ? 'permission denied' : e.message;
    // The address is well formed: a port in use is a runtime failure, not a usage error.
    throw new CliError(`cannot listen on ${o.listen}: ${why}`, EXIT_RUNTIME);
  }
  const bound = server.address() as { address: string; port: number };
  const shown = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  process.stdout.write(`pagewalk: serving http://${shown}:${bound.port}/metrics\n`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.close(() => resolve());
      // Keep-alive connections would hold the listener open until they time out.
      server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

/** Adds `pagewalk serve` to the program. */
export function registerServe(program: Command): void {
  const command = program
    .command('serve')
    .description('Prometheus exporter: group (and per-process) RSS, PSS, USS, swap and unique memory on /metrics')
    .option('--listen <host:port>', 'address to listen on (loopback unless told otherwise)', '127.0.0.1:9497')
    .option('--group-by <fact>', `group processes by ${GROUP_BY.join(', ')}`, 'name')
    .option('--config <file>', 'YAML group rules (see docs/exporter.md) instead of --group-by')
    .option('--min-interval <seconds>', 'reuse a snapshot younger than this', '10')
    .option('--max-scrape-seconds <seconds>', 'cut a snapshot short after this long (0: no bound)', '8')
    .option('--per-process', 'also per-process series (labels pid, name, group, and the Kubernetes ones)')
    .option('--max-series <n>', 'at most this many per-process series per metric (largest PSS first)', '500')
    .option(
      '--ram',
      'also the RAM census: pagewalk_ram_bytes by category and part, per-cgroup charges (see docs/ram.md)',
    );
  addKubeLogsOption(command).action(serveCommand);
}
