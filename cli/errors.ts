/** Errors raised by the command line itself (bad arguments). */
import { UpdraftError } from '../core/index.ts';

export class UsageError extends UpdraftError {}
