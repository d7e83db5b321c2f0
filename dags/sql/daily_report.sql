-- {{ dag.dag_id }}.{{ task.task_id }} for {{ ds }}, try {{ ti.try_number }}, on {{ conn.example_warehouse.host }}
select country, count(*) as orders, sum(amount) as revenue
from {{ conn.example_warehouse.schema }}.orders
where order_date >= '{{ ds }}' and order_date < '{{ macros.ds_add(ds, 1) }}'
group by country
order by revenue desc
limit {{ var.value.get('report_limit', 20) }}
