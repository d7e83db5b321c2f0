create or replace table `proj`.`shop`.`orders`
as (
select order_id, day, amount
from `proj`.`shop`.`stg_orders`
);