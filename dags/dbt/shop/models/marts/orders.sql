{{ config(
    materialized='incremental',
    unique_key='order_id',
    on_schema_change='append_new_columns'
) }}

select
  o.order_id,
  o.customer_id,
  o.status,
  o.amount,
  coalesce(p.paid, 0) as paid,
  o.updated_at
from {{ ref('stg_orders') }} o
left join {{ ref('order_payments') }} p on p.order_id = o.order_id
{% if is_incremental() %}
where o.updated_at > (select max(updated_at) from {{ this }})
{% endif %}
