/** Prints, as JSON, how long loading the dbt project in argv[2] takes in a fresh process (the import's cost). */
import { loadDbtGraph } from '../providers/dbt/index.ts';

const graph = loadDbtGraph({ projectDir: process.argv[2] });
process.stdout.write(JSON.stringify({ parse_ms: graph.parseMs, models: graph.selected.length }));
