-- The three best-selling products of each category, by units sold in every region, with
-- their average rating: order lines from every fragment, joined on the coordinator with the
-- products, categories and reviews it holds.
WITH sold AS (
    SELECT product_id, sum(quantity) AS units
    FROM order_details
    GROUP BY product_id
), rated AS (
    SELECT product_id, round(avg(rating), 2) AS rating, count(*) AS reviews
    FROM reviews
    GROUP BY product_id
), ranked AS (
    SELECT c.name AS category, p.name AS product, s.units, r.rating, r.reviews,
           rank() OVER (PARTITION BY c.category_id ORDER BY s.units DESC, p.product_id) AS place
    FROM sold s
    JOIN products p USING (product_id)
    JOIN categories c ON c.category_id = p.category_id
    LEFT JOIN rated r ON r.product_id = p.product_id
)
SELECT category, product, units, rating, reviews
FROM ranked
WHERE place <= 3
ORDER BY category, place;
