create or replace table `proj`.`shop`.`orders`
partition by date_trunc(day, month)
cluster by order_id
OPTIONS(description="""Orders, one row each.""", labels=[('team', 'data')])
as (
select order_id, day, amount
from `proj`.`shop`.`stg_orders`
);