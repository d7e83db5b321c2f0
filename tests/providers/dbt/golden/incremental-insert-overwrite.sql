begin transaction;
delete from `proj`.`shop`.`orders` where day in (
  select distinct day from (
select order_id, day, amount
from `proj`.`shop`.`stg_orders`
  )
);
insert into `proj`.`shop`.`orders` (`order_id`, `day`, `amount`)
select `order_id`, `day`, `amount` from (
select order_id, day, amount
from `proj`.`shop`.`stg_orders`
);
commit transaction;