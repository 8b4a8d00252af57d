-- Payments of US orders per method and status, with the number of distinct customers: the
-- US fragment of transactions (the others pruned) and its orders, joined with users, whose
-- columns are split over nodes (a view on the coordinator).
SELECT t.method, t.status, count(*) AS payments, sum(t.amount) AS amount,
       count(DISTINCT u.user_id) AS customers
FROM transactions t
JOIN orders o ON o.order_id = t.order_id AND o.region = t.region
JOIN users u ON u.user_id = o.user_id
WHERE t.region = 'US'
GROUP BY t.method, t.status
ORDER BY t.method, t.status;
