-- Units and revenue per category in the EU region: a join of one region's order lines (the
-- other fragments pruned) with the product and category reference tables.
SELECT c.name AS category, sum(d.quantity) AS units, sum(d.quantity * d.unit_price) AS revenue
FROM order_details d
JOIN products p ON p.product_id = d.product_id
JOIN categories c ON c.category_id = p.category_id
WHERE d.region = 'EU'
GROUP BY c.name
ORDER BY revenue DESC;
