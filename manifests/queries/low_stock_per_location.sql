-- Products running low at each location (fewer than 10 units left), with their category:
-- inventory, products and categories are whole tables on the coordinator.
SELECT i.location, p.sku, p.name, c.name AS category, i.quantity
FROM inventory i
JOIN products p ON p.product_id = i.product_id
JOIN categories c ON c.category_id = p.category_id
WHERE i.quantity < 10 AND p.active
ORDER BY i.location, i.quantity, p.sku;
