-- The shop application's tables as the dbt project reads them (its "landing" source).
create schema if not exists `shop_landing`;
create or replace table `shop_landing`.`orders` as
select 101 as order_id, 1 as customer_id, 'completed' as status, 2500 as amount_cents, timestamp('2026-01-05 10:00:00') as updated_at
union all select 102, 1, 'shipped', 1250, timestamp('2026-01-06 09:30:00')
union all select 103, 2, 'placed', 4000, timestamp('2026-01-07 16:45:00')
union all select 104, 3, 'returned', 999, timestamp('2026-01-08 12:00:00');
create or replace table `shop_landing`.`payments` as
select 1 as payment_id, 101 as order_id, 'card' as method, 2500 as amount_cents
union all select 2, 102, 'card', 1000
union all select 3, 102, 'voucher', 250
union all select 4, 104, 'bank_transfer', 999;
