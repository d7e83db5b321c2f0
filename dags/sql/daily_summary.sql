-- {{ dag.dag_id }}.{{ task.task_id }} for {{ ds }}
create or replace table `example.daily_summary` as
select '{{ ds }}' as day, count(*) as events
from unnest([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]) as hour
