//! `dbtopo seed`: a deterministic e-commerce dataset written through the coordinator, so the
//! rows reach their fragments the way the shop's own writes would.
//!
//! Deterministic: every value is computed from row numbers (no `random()`), so two seeds of
//! the same scale hold the same data. Keys are whatever the tables generate; later tables find
//! earlier rows by their natural keys (emails, SKUs, category names), in key order.

use std::time::{Duration, Instant};

use miette::{IntoDiagnostic, Result, miette};
use tokio_postgres::Client;

use crate::pg::server_message;
use crate::schema::Schema;

/// One step: the table it fills and the statement that fills it. `{scale}` stands for the
/// scale factor.
pub struct Step {
    pub table: &'static str,
    sql: &'static str,
}

impl Step {
    pub fn sql(&self, scale: u32) -> String {
        self.sql.replace("{scale}", &scale.to_string())
    }
}

/// The tables a seed fills, in foreign-key order.
pub const TABLES: [&str; 9] = [
    "categories",
    "users",
    "products",
    "inventory",
    "orders",
    "order_details",
    "transactions",
    "shipping",
    "reviews",
];

pub const STEPS: [Step; 11] = [
    Step {
        table: "categories",
        sql: "INSERT INTO categories (name)
              SELECT 'category ' || g FROM generate_series(1, 8) g",
    },
    Step {
        table: "categories",
        sql: "INSERT INTO categories (name, parent_id)
              SELECT 'category ' || p.g || '.' || c, cat.category_id
              FROM generate_series(1, 8) p(g)
              CROSS JOIN generate_series(1, 3) c
              JOIN categories cat ON cat.name = 'category ' || p.g",
    },
    Step {
        table: "users",
        sql: "INSERT INTO users (email, name, password_hash, region)
              SELECT 'user' || g || '@example.com', 'User ' || g,
                     md5('password ' || g),
                     CASE WHEN g % 3 = 0 THEN 'US' ELSE 'EU' END
              FROM generate_series(1, 100 * {scale}) g",
    },
    Step {
        table: "products",
        sql: "INSERT INTO products (sku, name, description, category_id, price)
              SELECT 'SKU-' || lpad(g::text, 6, '0'), 'Product ' || g,
                     'Deterministic product number ' || g,
                     (SELECT category_id FROM categories WHERE parent_id IS NOT NULL
                      ORDER BY category_id OFFSET (g % 24) LIMIT 1),
                     ((g * 37) % 9000 + 100) / 100.0
              FROM generate_series(1, 50 * {scale}) g",
    },
    Step {
        table: "inventory",
        sql: "INSERT INTO inventory (product_id, location, quantity)
              SELECT p.product_id, l.location, (p.product_id * 13 + l.n * 7) % 120
              FROM products p
              CROSS JOIN (VALUES (1, 'berlin'), (2, 'chicago')) l(n, location)",
    },
    Step {
        table: "orders",
        sql: "INSERT INTO orders (user_id, region, status, total_amount, order_date)
              SELECT u.user_id, u.region,
                     (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[g % 5 + 1],
                     0, timestamptz '2026-01-01 00:00:00+00' + g * interval '37 minutes'
              FROM generate_series(1, 200 * {scale}) g
              JOIN LATERAL (SELECT user_id, region FROM users ORDER BY user_id
                            OFFSET (g * 7) % (100 * {scale}) LIMIT 1) u ON true",
    },
    Step {
        table: "order_details",
        sql: "INSERT INTO order_details (order_id, region, product_id, quantity, unit_price)
              SELECT o.order_id, o.region, p.product_id, (o.order_id + d) % 4 + 1, p.price
              FROM orders o
              CROSS JOIN generate_series(0, 2) d
              JOIN LATERAL (SELECT product_id, price FROM products ORDER BY product_id
                            OFFSET (o.order_id * 11 + d * 17) % (50 * {scale}) LIMIT 1) p ON true
              WHERE d <= o.order_id % 3",
    },
    Step {
        table: "orders",
        sql: "UPDATE orders o SET total_amount = t.total
              FROM (SELECT order_id, region, sum(quantity * unit_price) AS total
                    FROM order_details GROUP BY order_id, region) t
              WHERE t.order_id = o.order_id AND t.region = o.region",
    },
    Step {
        table: "transactions",
        sql: "INSERT INTO transactions (order_id, region, amount, method, status)
              SELECT order_id, region, total_amount,
                     (ARRAY['card', 'paypal', 'bank_transfer', 'gift_card'])[order_id % 4 + 1],
                     CASE status WHEN 'pending' THEN 'pending' WHEN 'cancelled' THEN 'refunded'
                                 ELSE 'succeeded' END
              FROM orders",
    },
    Step {
        table: "shipping",
        sql: "INSERT INTO shipping (order_id, region, address, carrier, tracking_number, status,
                                    shipped_at, delivered_at)
              SELECT order_id, region, order_id || ' Market Street', 'dhl', 'T-' || order_id,
                     CASE status WHEN 'shipped' THEN 'in_transit' WHEN 'delivered' THEN 'delivered'
                                 ELSE 'pending' END,
                     CASE WHEN status IN ('shipped', 'delivered') THEN order_date + interval '1 day' END,
                     CASE WHEN status = 'delivered' THEN order_date + interval '3 days' END
              FROM orders WHERE status <> 'cancelled'",
    },
    // Two reviews per user, never twice for one product.
    Step {
        table: "reviews",
        sql: "INSERT INTO reviews (user_id, product_id, rating, comment)
              SELECT DISTINCT ON (u.user_id, p.product_id) u.user_id, p.product_id,
                     (u.user_id + p.product_id) % 5 + 1, 'Review by user ' || u.user_id
              FROM users u
              CROSS JOIN generate_series(0, 1) r
              JOIN LATERAL (SELECT product_id FROM products ORDER BY product_id
                            OFFSET (u.user_id * 3 + r * 5) % (50 * {scale}) LIMIT 1) p ON true",
    },
];

/// The schema must hold every table a seed fills.
pub fn require_tables(schema: &Schema) -> Result<()> {
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !schema.tables.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(miette!(
            help = "seed knows the e-commerce tables of manifests/ecommerce.sql",
            "the schema has no table {}",
            missing.join(", ")
        ));
    }
    Ok(())
}

/// Seed fills empty tables only: `node`, behind `client`, must hold no user yet.
pub async fn require_empty(client: &Client, node: &str) -> Result<()> {
    let rows: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .map_err(|e| miette!("node {node}: {}", server_message(&e)))?
        .get(0);
    if rows > 0 {
        return Err(miette!(
            help = "seed fills empty tables; destroy and apply again for a fresh database",
            "node {node} already holds {rows} user(s)"
        ));
    }
    Ok(())
}

/// Run [`STEPS`] at `scale` in one transaction; `progress` hears each step's table, the rows
/// it wrote and how long it took.
pub async fn fill(
    client: &mut Client,
    scale: u32,
    mut progress: impl FnMut(&str, u64, Duration),
) -> Result<()> {
    let transaction = client.transaction().await.into_diagnostic()?;
    for step in &STEPS {
        let started = Instant::now();
        let rows = transaction
            .execute(&step.sql(scale), &[])
            .await
            .map_err(|e| miette!("seeding {}: {}", step.table, server_message(&e)))?;
        progress(step.table, rows, started.elapsed());
    }
    transaction.commit().await.into_diagnostic()
}

/// `ANALYZE` the database behind `client` (on `node`), so plans use current statistics.
pub async fn analyze(client: &Client, node: &str) -> Result<()> {
    client
        .batch_execute("ANALYZE")
        .await
        .map_err(|e| miette!("analyzing node {node}: {}", server_message(&e)))
}
