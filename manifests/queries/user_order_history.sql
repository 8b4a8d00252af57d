-- A user's order history across regions: every order of user 3 with its number of lines,
-- newest first. The user's orders may live on any region's node, so every
-- orders fragment is read; the filter on user_id is pushed down to each of them.
SELECT o.order_id, o.region, o.order_date, o.status, o.total_amount,
       count(d.order_detail_id) AS lines
FROM orders o
LEFT JOIN order_details d ON d.order_id = o.order_id AND d.region = o.region
WHERE o.user_id = 3
GROUP BY o.order_id, o.region, o.order_date, o.status, o.total_amount
ORDER BY o.order_date DESC;
