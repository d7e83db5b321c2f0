/**
 * Updraft's SFTP provider (`updraft/providers/sftp`), on ssh2 and ssh2-sftp-client: the `sftp`
 * connection type, a per-process connection pool, SftpHook, SftpOperator, SftpSensor, the
 * trigger `sftp.SftpTrigger`, and bulk downloads built on iterate. Importing it registers them.
 */
import { registerSftpConnectionType } from './connection.ts';
import { testSftpConnection } from './connection-test.ts';

registerSftpConnectionType(testSftpConnection);

export { SFTP_DEFAULT_CONN_ID, sftpExtraSchema, fingerprint, HostKeyMismatchError, resolveTarget, type SftpExtra, type SshTarget } from './connection.ts';
export { SftpPool, SftpConnectionError, closeSftpPools, isConnectionLevel, SFTP_STATUS, type PoolStats } from './pool.ts';
export { SftpHook, LARGE_FILE_BYTES, type SftpFile, type SftpFileType, type ListOptions, type DownloadOptions, type DownloadResult } from './hook.ts';
export { SftpOperator, sftpGetTask, sftpBulkDownload, type SftpOperatorOptions, type SftpOperation, type SftpGetTaskOptions, type SftpBulkDownloadOptions, type FetchedFile } from './operators.ts';
export { SftpSensor, type SftpSensorOptions } from './sensors.ts';
export { SftpTrigger, pollSftp, type SftpEvent, type SftpTriggerKwargs } from './triggers.ts';
