-- An order is never paid more than its amount.
select order_id, amount, paid
from {{ ref('orders') }}
where paid > amount
