import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BaseOperator, DagDefinitionError, InvalidConfError, XComArg, chain, dag, task, taskGroup } from '../../core/index.ts';

class Noop extends BaseOperator {
  execute(): unknown {
    return null;
  }
}

/** Reads another task's output without linking to it, the way a careless custom operator might. */
class Peek extends BaseOperator {
  constructor(taskId: string, readonly ref: XComArg<unknown>) {
    super({ taskId });
  }

  execute(): unknown {
    return null;
  }

  override inputs(): unknown {
    return { value: this.ref };
  }
}

const op = (taskId: string) => new Noop({ taskId });
const one = task('one', () => 1);
const consume = task('consume', ({ v }: { v: number }) => v + 1);

/** Run `build`, require a DagDefinitionError, and hand it back for message checks. */
function definitionError(build: () => unknown): DagDefinitionError {
  try {
    build();
  } catch (err) {
    expect(err).toBeInstanceOf(DagDefinitionError);
    return err as DagDefinitionError;
  }
  throw new Error('expected a DagDefinitionError, but nothing was thrown');
}

describe('DAG arguments', () => {
  it('rejects an invalid cron expression and says which field is out of range', () => {
    const err = definitionError(() => dag({ dagId: 'bad_cron', schedule: '61 * * * *', startDate: '2024-01-01T00:00:00Z' }, () => {}));
    expect(err.dagId).toBe('bad_cron');
    expect(err.message).toBe('DAG "bad_cron": invalid cron expression "61 * * * *": minute value 61 is out of range 0-59; use five fields "min hour day month weekday" or a preset like @daily');
  });

  it('rejects a timezone that is not an IANA zone', () => {
    const err = definitionError(() => dag({ dagId: 'bad_tz', timezone: 'Mars/Olympus' }, () => {}));
    expect(err.message).toBe('DAG "bad_tz": invalid timezone "Mars/Olympus": use an IANA zone name such as "UTC" or "Europe/Berlin"');
  });

  it('requires a startDate on a scheduled DAG', () => {
    const err = definitionError(() => dag({ dagId: 'no_start', schedule: '@daily' }, () => {}));
    expect(err.message).toBe('DAG "no_start": a scheduled DAG needs a startDate (schedule "@daily")');
  });

  it('names the value when startDate is not a date', () => {
    const err = definitionError(() => dag({ dagId: 'bad_start', startDate: 'yesterday' }, () => {}));
    expect(err.message).toBe('DAG "bad_start": invalid DAG arguments: startDate: "yesterday" is not a date; use an ISO 8601 string such as "2024-01-01T00:00:00Z"');
  });

  it('rejects params that are not a zod schema', () => {
    const err = definitionError(() => dag({ dagId: 'plain_params', params: { limit: 10 } as unknown as z.ZodType }, () => {}));
    expect(err.message).toBe('DAG "plain_params": invalid DAG arguments: params: params must be a zod schema, e.g. z.object({ limit: z.number().default(10) })');
  });

  it('rejects a params schema without defaults on a scheduled DAG', () => {
    const err = definitionError(() => dag({
      dagId: 'strict_params', schedule: '@hourly', startDate: '2024-01-01T00:00:00Z', params: z.object({ limit: z.number() }),
    }, () => {}));
    expect(err.message).toMatch(/^DAG "strict_params": params schema rejects an empty conf, so scheduled runs could never start; give every param a default \(limit: .+\)$/);
  });

  it('accepts required params on a manual DAG and checks them per run', () => {
    const d = dag({ dagId: 'manual_params', params: z.object({ limit: z.number().int() }) }, () => {});
    expect(d.parseConf({ limit: 3 })).toEqual({ limit: 3 });
    expect(() => d.parseConf({ limit: 'many' })).toThrow(InvalidConfError);
    expect(() => d.parseConf({ limit: 'many' })).toThrow(/^DAG "manual_params": run conf is invalid: limit: /);
  });

  it('rejects unknown DAG options by name', () => {
    const err = definitionError(() => dag({ dagId: 'typo', scheduel: '@daily' } as never, () => {}));
    expect(err.message).toBe('DAG "typo": invalid DAG arguments: (root): Unrecognized key: "scheduel"');
  });
});

describe('task definitions', () => {
  it('rejects a duplicate task id', () => {
    const err = definitionError(() => dag({ dagId: 'dupes' }, () => {
      op('load');
      op('load');
    }));
    expect([err.dagId, err.taskId]).toEqual(['dupes', 'load']);
    expect(err.message).toBe('DAG "dupes", task "load": duplicate task id');
  });

  it('rejects negative retries', () => {
    const err = definitionError(() => dag({ dagId: 'neg' }, () => {
      task({ taskId: 'fragile', retries: -1 }, () => 1)();
    }));
    expect(err.taskId).toBe('fragile');
    expect(err.message).toMatch(/^DAG "neg", task "fragile": invalid options: retries: Too small: expected number to be >=0$/);
  });

  it('rejects an unknown task option by name', () => {
    const err = definitionError(() => dag({ dagId: 'unknown_opt' }, () => {
      new Noop({ taskId: 'typo', retry: 3 } as never);
    }));
    expect(err.message).toBe('DAG "unknown_opt", task "typo": invalid options: (root): Unrecognized key: "retry"');
  });

  it('names the value when a duration string is malformed', () => {
    const err = definitionError(() => dag({ dagId: 'bad_delay' }, () => {
      task({ taskId: 'slow', retryDelay: '5 minutes' }, () => 1)();
    }));
    expect(err.message).toBe('DAG "bad_delay", task "slow": invalid options: retryDelay: "5 minutes" is not a duration; use milliseconds or a string like "30s", "5m", "1h30m"');
  });

  it('rejects a task created outside dag()', () => {
    const err = definitionError(() => task('lonely', () => 1)());
    expect(err.dagId).toBeNull();
    expect(err.message).toBe('task "lonely" was created outside a dag() builder; create tasks inside dag({ ... }, () => { ... })');
    expect(definitionError(() => op('stray')).message).toMatch(/^task "stray" was created outside a dag\(\) builder/);
    expect(definitionError(() => taskGroup('g', () => {})).message).toMatch(/^taskGroup\(\) was created outside a dag\(\) builder/);
  });

  it('leaves no DAG open after a builder throws', () => {
    definitionError(() => dag({ dagId: 'throws' }, () => {
      op('fine');
      op('fine');
    }));
    expect(definitionError(() => op('after')).message).toMatch(/^task "after" was created outside a dag\(\) builder/);
  });
});

describe('graph checks', () => {
  it('reports a cycle with the path that closes it', () => {
    const err = definitionError(() => dag({ dagId: 'loop' }, () => {
      const [start, a, b, c] = ['start', 'a', 'b', 'c'].map(op);
      chain(start, a, b, c, a);
    }));
    expect(err.message).toBe('DAG "loop": cycle detected: a -> b -> c -> a');
  });

  it('reports a task that depends on itself', () => {
    const err = definitionError(() => dag({ dagId: 'self_loop' }, () => {
      const a = op('a');
      a.then(a);
    }));
    expect(err.message).toBe('DAG "self_loop": cycle detected: a -> a');
  });

  it('reports a cycle made through task outputs', () => {
    const err = definitionError(() => dag({ dagId: 'xcom_loop' }, () => {
      const first = one();
      consume({ v: first }).then(first);
    }));
    expect(err.message).toBe('DAG "xcom_loop": cycle detected: one -> consume -> one');
  });

  it('rejects an upstream id that is not a task of the DAG', () => {
    const err = definitionError(() => dag({ dagId: 'ghost' }, () => {
      op('real').upstreamIds.add('missing');
    }));
    expect([err.dagId, err.taskId]).toEqual(['ghost', 'real']);
    expect(err.message).toBe('DAG "ghost", task "real": unknown upstream task "missing"');
  });

  describe('across DAGs', () => {
    let foreign!: XComArg<number>;
    dag({ dagId: 'producer' }, () => {
      foreign = one();
    });

    it('rejects passing another DAG\'s output to a task', () => {
      const err = definitionError(() => dag({ dagId: 'consumer' }, () => {
        consume({ v: foreign });
      }));
      expect([err.dagId, err.taskId]).toEqual(['consumer', 'consume']);
      expect(err.message).toBe('DAG "consumer", task "consume": cannot depend on task "one" of another DAG "producer"; use an external-task sensor instead');
    });

    it('rejects linking to another DAG\'s task', () => {
      const err = definitionError(() => dag({ dagId: 'linker' }, () => {
        foreign.then(op('after_foreign'));
      }));
      expect(err.message).toBe('DAG "linker", task "after_foreign": cannot depend on task "one" of another DAG "producer"; use an external-task sensor instead');
    });

    it('rejects an operator whose inputs read another DAG\'s output', () => {
      const err = definitionError(() => dag({ dagId: 'peeker' }, () => {
        new Peek('peek', foreign);
      }));
      expect(err.message).toBe('DAG "peeker", task "peek": uses the output of task "one" from another DAG "producer"');
    });
  });
});
