/**
 * FileSensor: waits until a file, or at least `minCount` files matching a glob, exist, by
 * deferring to a FileTrigger that checks every `pokeInterval`. The path may depend on the run
 * (a function of the context, as Airflow templates `filepath`). Its return value is the sorted
 * list of matched paths, so downstream tasks know exactly which files arrived.
 */
import path from 'node:path';
import { z } from 'zod';
import { BaseSensorOperator, type SensorOptions } from './base-sensor.ts';
import { FileTrigger } from '../triggers/builtin/file.ts';
import type { Context } from '../authoring/context.ts';
import { TaskFailedNoRetry, TaskFailure } from '../errors.ts';

export type FilePath = string | ((context: Context) => string);

export interface FileSensorOptions extends SensorOptions {
  /** Absolute path or glob ("/data/in/*.csv"), or a function of the context returning one. */
  filepath: FilePath;
  /** Matches needed before the sensor succeeds; default 1. */
  minCount?: number;
}

const eventSchema = z.object({ paths: z.array(z.string()) });

export class FileSensor extends BaseSensorOperator {
  readonly filepath: FilePath;
  readonly minCount: number;

  constructor(options: FileSensorOptions) {
    const { filepath, minCount, ...rest } = options;
    super(rest);
    if (typeof filepath === 'string' && !path.isAbsolute(filepath)) {
      throw this.invalid(`filepath "${filepath}" must be absolute; relative paths depend on the triggerer's working directory`);
    }
    if (typeof filepath !== 'string' && typeof filepath !== 'function') throw this.invalid('filepath must be a string or a function of the context');
    if (minCount !== undefined && !(Number.isInteger(minCount) && minCount >= 1)) {
      throw this.invalid(`minCount must be a whole number of at least 1, got ${String(minCount)}`);
    }
    this.filepath = filepath;
    this.minCount = minCount ?? 1;
  }

  async execute(context: Context): Promise<never> {
    const pattern = typeof this.filepath === 'function' ? this.filepath(context) : this.filepath;
    if (typeof pattern !== 'string' || !path.isAbsolute(pattern)) {
      throw new TaskFailedNoRetry(`sensor "${this.taskId}" of DAG "${this.dagId}": filepath function returned ${JSON.stringify(pattern)}; it must return an absolute path or glob`);
    }
    return this.deferTo(new FileTrigger({ pattern, pokeIntervalMs: this.pokeInterval, minCount: this.minCount }));
  }

  /** The matched paths, sorted. */
  executeComplete(context: Context, event: unknown = context.event): string[] {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) {
      throw new TaskFailure(`sensor "${this.taskId}" of DAG "${this.dagId}" resumed with an unexpected event ${JSON.stringify(event)}; expected { paths: string[] } from ${FileTrigger.triggerName}`);
    }
    return parsed.data.paths;
  }
}
