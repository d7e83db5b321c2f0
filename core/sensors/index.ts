/**
 * The built-in sensors: deferrable operators that wait on a time, a file or another DAG's task,
 * holding no worker slot while they wait. Importing this module also registers the built-in
 * triggers they defer to.
 */
import '../triggers/builtin/index.ts';

export {
  BaseSensorOperator, SensorTimeout, DEFAULT_SENSOR_TIMEOUT_MS, DEFAULT_POKE_INTERVAL_MS, type SensorOptions,
} from './base-sensor.ts';
export {
  DateTimeSensor, TimeDeltaSensor, type DateTimeSensorOptions, type TimeDeltaSensorOptions, type TargetTime,
} from './date-time.ts';
export { FileSensor, type FileSensorOptions, type FilePath } from './file.ts';
export { ExternalTaskSensor, type ExternalTaskSensorOptions } from './external-task.ts';
export { PokeSensorOperator, SensorMode, type PokeResult, type PokeSensorOptions } from './poke-sensor.ts';
export { FunctionSensor, sensorTask, type FunctionSensorOptions, type PokeFn, type SensorTask, type SensorTaskOptions } from './function-sensor.ts';
