{{ config(cluster_by=['country']) }}

select
  c.customer_id,
  c.name,
  c.country,
  count(o.order_id) as orders,
  {% for s in counted_statuses() -%}
  sum(case when o.status = '{{ s }}' then 1 else 0 end) as {{ s }}_orders,
  {% endfor -%}
  coalesce(sum(o.amount), 0) as total_amount,
  coalesce(sum(o.paid), 0) as total_paid
from {{ ref('stg_customers') }} c
left join {{ ref('orders') }} o on o.customer_id = c.customer_id
group by c.customer_id, c.name, c.country
