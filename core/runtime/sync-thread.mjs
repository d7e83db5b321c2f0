// Worker-thread entry for sync tasks: enable TypeScript loading, then hand over to the
// implementation. Kept as plain JavaScript so a thread can start without any loader.
import { register } from 'tsx/esm/api';

register();
const { runSyncTask } = await import('./sync-thread-impl.ts');
export default runSyncTask;
