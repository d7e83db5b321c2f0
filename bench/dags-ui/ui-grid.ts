/** The UI bench's DAG: 500 tasks in 10 task groups of 50, each group a chain. */
import { dag, task, taskGroup, chain } from 'updraft';

export default dag({ dagId: 'ui_grid', tags: ['bench'] }, () => {
  for (let g = 0; g < 10; g++) {
    taskGroup(`group_${g}`, () => {
      const steps = Array.from({ length: 50 }, (_, i) => task(`step_${String(i).padStart(2, '0')}`, () => i)());
      chain(...steps);
    });
  }
});
