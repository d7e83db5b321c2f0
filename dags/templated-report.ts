/**
 * Templated fields and a connection from the environment. `ReportOperator` declares `sql` and
 * `outputPath` as templated, and `.sql` as a template file extension, as Airflow operators
 * do: before `execute`, `sql/daily_report.sql` is rendered with the run's `ds`, a variable (with
 * a default) and the connection's fields. The task reads the `example_warehouse` connection
 * (`npm start` sets UPDRAFT_CONN_EXAMPLE_WAREHOUSE), logs it with the password masked, and
 * writes the query it would send to a file. `updraft tasks render templated_report report`
 * shows the rendered fields without running anything.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dag, BaseOperator, type Context, type TaskOptions } from 'updraft';

export class ReportOperator extends BaseOperator {
  static override templateFields = ['sql', 'outputPath'];
  static override templateExt = ['.sql'];
  sql: string;
  outputPath: string;
  readonly connId: string;

  constructor({ sql, outputPath, connId, ...options }: TaskOptions & { sql: string; outputPath: string; connId: string }) {
    super(options);
    this.sql = sql;
    this.outputPath = outputPath;
    this.connId = connId;
  }

  async execute(ctx: Context): Promise<{ file: string; host: string | null; lines: number }> {
    const conn = await ctx.connection(this.connId);
    // The password is masked in the log: the masker learned it when the connection was read.
    ctx.log.info('warehouse %s://%s:%s@%s/%s', conn.connType, conn.login, conn.password, conn.host, conn.schema);
    await mkdir(path.dirname(this.outputPath), { recursive: true });
    await writeFile(this.outputPath, `${this.sql}\n`);
    return { file: this.outputPath, host: conn.host, lines: this.sql.split('\n').length };
  }
}

export default dag({
  dagId: 'templated_report', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'templates'],
  templateSearchPath: ['sql'], userDefinedMacros: { team: 'analytics' },
}, () => {
  new ReportOperator({
    taskId: 'report', connId: 'example_warehouse', sql: 'daily_report.sql',
    outputPath: '.updraft/reports/{{ team }}/{{ ds_nodash }}.sql',
  });
});
