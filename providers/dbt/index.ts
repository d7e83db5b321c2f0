/**
 * Updraft's dbt provider (`updraft/providers/dbt`): dbt projects read natively in TypeScript
 * (no Python, no dbt install), compiled once per run by a setup task, and every model submitted
 * to BigQuery as a deferrable job through the BigQuery provider.
 */
export { dbtTaskGroup, dbtDag, type DbtTaskGroupOptions, type DbtTaskGroup, type TestBehavior } from './task-group.ts';
export { loadDbtGraph, type DbtGraph, type DbtProjectOptions } from './load.ts';
export { DbtModelOperator, DbtSeedOperator, DbtTestOperator, datasetUri, type DbtNodeTaskOptions, type DbtTaskResult } from './operators.ts';
export { compileRun, type CompiledMeta, type CompileSummary } from './compile.ts';
export { materialize, injectCtes, partitionExpression, type MaterializeInput, type Materialized } from './materialize.ts';
export { DbtProjectError, DbtCompilerError, DbtTestFailure } from './errors.ts';
export type { DbtNode, GenericTest } from './project.ts';
export type { DbtConfig, PartitionBy } from './config.ts';
