select
  order_id,
  customer_id,
  status,
  {{ cents_to_dollars('amount_cents') }} as amount,
  updated_at
from {{ source('landing', 'orders') }}
{% if var('inject_bad_order') %}
union all
select cast(null as int64), 1, 'placed', 1.00, timestamp('2026-01-01 00:00:00')
{% endif %}
