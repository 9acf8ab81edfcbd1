/**
 * The well-behaved readers (readers.ts) in a process of their own, so the
 * attacks the runner drives cannot slow them down. Started by the hostile
 * scenario with its settings as JSON in argv[2]; prints one JSON sample per
 * line on stdout; stops on SIGTERM.
 */
import { Dataset } from '../data.js';
import { type ReaderOptions, startReaders } from './readers.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as Omit<ReaderOptions, 'data' | 'secret' | 'onSample'> & {
  root: string;
  secretHex: string;
};
const data = new Dataset(cfg.root);
const { readFileSync } = await import('node:fs');
data.remember(cfg.key, readFileSync(data.pathOf(cfg.key)));
const readers = startReaders({
  ...cfg,
  data,
  secret: Buffer.from(cfg.secretHex, 'hex'),
  onSample: (s) => process.stdout.write(`${JSON.stringify(s)}\n`),
});
process.once('SIGTERM', () => {
  void readers.stop().then(() => process.exit(0));
});
