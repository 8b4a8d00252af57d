-- Revenue per region and month: the sum of the order lines of orders not cancelled. Orders
-- and their lines are co-located by region, so each node joins and aggregates its own
-- (partitionwise join and aggregate) and the coordinator only appends the results.
SELECT o.region, date_trunc('month', o.order_date) AS month,
       count(DISTINCT o.order_id) AS orders,
       sum(d.quantity * d.unit_price) AS revenue
FROM orders o
JOIN order_details d ON d.order_id = o.order_id AND d.region = o.region
WHERE o.status <> 'cancelled'
GROUP BY o.region, date_trunc('month', o.order_date)
ORDER BY o.region, month;
