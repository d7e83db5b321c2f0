/**
 * The trigger registry: stable name → class. The triggerer only ever instantiates classes
 * found here, so a database row can never make it import arbitrary code. Built-in triggers
 * register themselves; user triggers register when their module is imported (DAG files, or
 * modules they import, call `registerTrigger`).
 */
import { z } from 'zod';
import type { BaseTrigger, SerializedTrigger, TriggerClass } from './base-trigger.ts';
import { InvalidTriggerKwargsError, UnknownTriggerError } from '../errors.ts';
import { formatZodIssues } from '../authoring/operator.ts';

const registry = new Map<string, TriggerClass<any>>();

export function registerTrigger<C extends TriggerClass<any>>(cls: C): C {
  const existing = registry.get(cls.triggerName);
  // Re-imported DAG files define the class again; the newest definition wins.
  if (existing && existing !== cls && existing.name !== cls.name) {
    throw new Error(`trigger name "${cls.triggerName}" is already registered by class ${existing.name}; trigger names must be unique`);
  }
  registry.set(cls.triggerName, cls);
  return cls;
}

export function registeredTriggerNames(): string[] {
  return [...registry.keys()].sort();
}

export function triggerClass(name: string): TriggerClass<any> {
  const cls = registry.get(name);
  if (!cls) throw new UnknownTriggerError(name, registeredTriggerNames());
  return cls;
}

/** Rebuild a trigger from its stored form; kwargs are validated again on the way in. */
export function deserializeTrigger(stored: SerializedTrigger): BaseTrigger {
  const cls = triggerClass(stored.name);
  const parsed = (cls.kwargsSchema as z.ZodType).safeParse(stored.kwargs);
  if (!parsed.success) throw new InvalidTriggerKwargsError(stored.name, formatZodIssues(parsed.error));
  return new cls(parsed.data as Record<string, unknown>);
}

/** Serialize with validation, turning zod's error into one that names the trigger. */
export function serializeTrigger(trigger: BaseTrigger): SerializedTrigger {
  const cls = trigger.constructor as TriggerClass<any>;
  if (!registry.has(cls.triggerName)) registerTrigger(cls);
  const parsed = (cls.kwargsSchema as z.ZodType).safeParse(trigger.kwargs);
  if (!parsed.success) throw new InvalidTriggerKwargsError(cls.triggerName, formatZodIssues(parsed.error));
  return { name: cls.triggerName, kwargs: parsed.data as Record<string, unknown> };
}
