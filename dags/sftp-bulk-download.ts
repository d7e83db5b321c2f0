/**
 * Seed 002's job, the fast way: list a remote directory, then download every file inside ONE
 * iterate TI over the worker's shared SFTP pool, checkpointing as it goes, so a retried TI
 * (say after its worker was killed) fetches only the files not yet done.
 *
 * It needs an `sftp_example` connection, for instance:
 *   UPDRAFT_CONN_SFTP_EXAMPLE='{"conn_type":"sftp","host":"sftp.example.com","login":"me",
 *     "extra":{"key_file":"/home/me/.ssh/id_ed25519","host_key":"ssh-ed25519 AAAA…"}}'
 * Without one (as in `npm start`, which starts no sshd) the listing task skips with a one-line
 * reason and the download is skipped after it. Importing this file does no I/O.
 */
import { ConnectionNotFoundError, TaskSkipped, dag, task } from 'updraft';
import { SftpHook, sftpGetTask, type SftpFile } from 'updraft/providers/sftp';

const CONN = 'sftp_example';

const listOutbox = task('list_outbox', async (_: void, ctx): Promise<SftpFile[]> => {
  let sftp: SftpHook;
  try {
    sftp = await SftpHook.create(ctx, CONN);
  } catch (err) {
    if (err instanceof ConnectionNotFoundError) throw new TaskSkipped(`no "${CONN}" connection: set UPDRAFT_CONN_SFTP_EXAMPLE to run this example`);
    throw err;
  }
  return sftp.list('/outbox', { pattern: '*.xml', newerThan: ctx.dataIntervalStart ?? undefined });
});

const fetchFile = sftpGetTask('fetch_file', { connId: CONN, to: '.updraft/sftp-example/inbox' });

export default dag({ dagId: 'sftp_bulk_download', schedule: '@hourly', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'sftp'] }, () => {
  fetchFile.iterate({ file: listOutbox() }, { concurrency: 128 }, { retries: 2 });
});
