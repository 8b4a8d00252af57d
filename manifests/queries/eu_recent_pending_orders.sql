-- The back office's list: recent pending orders of the EU region. The filter on the fragment
-- key (region) prunes every other region's fragment; the node answers from the declared
-- index on (status, order_date).
SELECT order_id, user_id, order_date, total_amount
FROM orders
WHERE region = 'EU' AND status = 'pending' AND order_date >= timestamptz '2026-01-10'
ORDER BY order_date;
