merge into `proj`.`shop`.`orders` as DBT_INTERNAL_DEST
using (
select order_id, day, amount
from `proj`.`shop`.`stg_orders`
) as DBT_INTERNAL_SOURCE
on ((DBT_INTERNAL_SOURCE.order_id = DBT_INTERNAL_DEST.order_id) and (DBT_INTERNAL_SOURCE.day = DBT_INTERNAL_DEST.day))
when matched then update set
  `amount` = DBT_INTERNAL_SOURCE.`amount`
when not matched then insert
  (`order_id`, `day`, `amount`)
values
  (`order_id`, `day`, `amount`);