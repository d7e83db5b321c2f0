/**
 * A generated dbt project for the dbt bench: LAYERS layers of WIDTH table models; each model
 * past the first layer refs two models of the layer above (its own index and the next).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function writeBenchProject(dir: string, layers: number, width: number): number {
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  writeFileSync(path.join(dir, 'dbt_project.yml'), 'name: bench\nprofile: bench\nmodels:\n  bench:\n    +materialized: table\n');
  writeFileSync(path.join(dir, 'profiles.yml'), 'bench:\n  target: dev\n  outputs:\n    dev:\n      type: bigquery\n      project: bench\n      dataset: dbt_bench\n      location: US\n');
  for (let layer = 0; layer < layers; layer++) {
    const folder = path.join(dir, 'models', `layer_${layer}`);
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < width; i++) {
      const sql = layer === 0
        ? `-- layer 0, model ${i}\nselect ${i} as id, {{ var('scale', 1) }} as weight\n`
        : `-- layer ${layer}, model ${i}\nselect a.id + b.id as id, a.weight + b.weight as weight\nfrom {{ ref('m_${layer - 1}_${i}') }} a\ncross join {{ ref('m_${layer - 1}_${(i + 1) % width}') }} b\n`;
      writeFileSync(path.join(folder, `m_${layer}_${i}.sql`), sql);
    }
  }
  return layers * width;
}
