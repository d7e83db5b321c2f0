/**
 * Benchmark DAGs for the SFTP bench; the `bench_sftp` connection points at a real sshd behind
 * the latency proxy, and BENCH_SFTP_DIR / BENCH_SFTP_TO name the remote and local directories
 * (read from the environment, so importing this file does no I/O).
 * - bench_sftp_async: ONE async task lists the directory and downloads every file through
 *   SftpHook (the pool's full width in flight), hashing each file in memory.
 * - bench_sftp_iterate: the bulk-download example: sftpBulkDownload (list, then iterate with
 *   checkpoints), files written to BENCH_SFTP_TO.
 * - bench_sftp_mapped: one mapped sftpGetTask TI per file, files written to BENCH_SFTP_TO.
 */
import { createHash } from 'node:crypto';
import { dag, task } from 'updraft';
import { SftpHook, sftpBulkDownload, sftpGetTask } from 'updraft/providers/sftp';

const CONN = 'bench_sftp';
const dir = process.env.BENCH_SFTP_DIR ?? '/nonexistent';
const to = process.env.BENCH_SFTP_TO ?? '/nonexistent';

/** One digest over every file's name and sha256, in name order: what the bench checks. */
export function digestOf(entries: [string, string][]): string {
  const h = createHash('sha256');
  for (const [name, sum] of entries.sort((a, b) => (a[0] < b[0] ? -1 : 1))) h.update(`${name}:${sum}\n`);
  return h.digest('hex');
}

const downloadAll = task('download_all', async (_: void, ctx) => {
  const sftp = await SftpHook.create(ctx, CONN);
  const files = await sftp.list(dir, { pattern: '*.xml' });
  const sums: [string, string][] = [];
  for await (const r of sftp.download(files, { to: (f, data) => sums.push([f.path.slice(dir.length + 1), createHash('sha256').update(data).digest('hex')]) })) {
    if (r.error) throw r.error;
  }
  return { files: sums.length, digest: digestOf(sums) };
});

export const asyncPool = dag({ dagId: 'bench_sftp_async', schedule: null }, () => { downloadAll(); });

export const iterate = dag({ dagId: 'bench_sftp_iterate', schedule: null }, () => {
  sftpBulkDownload({
    taskId: 'download', connId: CONN, remoteDir: dir, pattern: '*.xml', to,
    taskOptions: { retries: 2, retryDelay: 0 },
  });
});

const listFiles = task('list_files', async (_: void, ctx) => (await SftpHook.create(ctx, CONN)).list(dir, { pattern: '*.xml' }));
const getOne = sftpGetTask('get_one', { connId: CONN, to });
export const mapped = dag({ dagId: 'bench_sftp_mapped', schedule: null, maxActiveTasks: 10_000 }, () => {
  getOne.expand({ file: listFiles() });
});
