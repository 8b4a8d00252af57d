//! Sample documents for the e-commerce collections (`manifests/mongo/`): catalog documents
//! for the products `dbtopo seed` writes to PostgreSQL (same `sku` and `product_id`), reviews
//! and recent user activity. Deterministic but for the activity times, which are relative to
//! now so the 30-day TTL index keeps them.

use mongodb::bson::{DateTime, Document, doc};

use super::client::{Member, MongoError};

/// The collections seeded, in order.
pub const COLLECTIONS: [&str; 3] = ["product_catalog", "reviews", "user_activity"];

const CATEGORIES: [&str; 6] = [
    "electronics/phones",
    "electronics/laptops",
    "home/kitchen",
    "home/garden",
    "books/fiction",
    "books/science",
];

/// The documents of `collection` at `scale` (50 × N products, 100 × N reviews, 200 × N
/// events).
pub fn documents(collection: &str, scale: u32) -> Vec<Document> {
    let scale = i64::from(scale);
    let now = DateTime::now().timestamp_millis();
    match collection {
        "product_catalog" => (1..=50 * scale)
            .map(|g| {
                let category = CATEGORIES[(g % 6) as usize];
                let color = ["black", "white", "red"][(g % 3) as usize];
                let family = category.split('/').next().unwrap_or(category);
                let label = if g % 5 == 0 { "sale" } else { "new" };
                doc! {
                    "sku": format!("SKU-{g:06}"),
                    "product_id": g,
                    "name": format!("Product {g}"),
                    "category": category,
                    "price": ((g * 37) % 9000 + 100) as f64 / 100.0,
                    "currency": if g % 2 == 0 { "EUR" } else { "USD" },
                    "attributes": { "color": color, "weight_g": (g * 13) % 2000 + 50 },
                    "tags": [family, label],
                    "active": g % 10 != 0,
                    "updated_at": DateTime::from_millis(1_767_225_600_000 + g * 3_600_000),
                }
            })
            .collect(),
        "reviews" => (1..=100 * scale)
            .map(|g| {
                doc! {
                    "product_id": (g - 1) % (50 * scale) + 1,
                    "user_id": (g - 1) / (50 * scale) + 1 + ((g * 7) % 50) * 2,
                    "rating": ((g * 7) % 5 + 1) as i32,
                    "title": format!("Review {g}"),
                    "body": "Deterministic review text.",
                    "verified_purchase": g % 3 != 0,
                    "helpful_votes": (g % 11) as i32,
                    "created_at": DateTime::from_millis(1_767_225_600_000 + g * 60_000),
                }
            })
            .collect(),
        "user_activity" => (1..=200 * scale)
            .map(|g| {
                let kind = [
                    "page_view",
                    "product_view",
                    "search",
                    "add_to_cart",
                    "checkout",
                ][(g % 5) as usize];
                let mut event = doc! {
                    "user_id": (g % (100 * scale)) + 1,
                    "type": kind,
                    "at": DateTime::from_millis(now - g * 60_000),
                    "session_id": format!("s{:05}", g / 4),
                };
                match kind {
                    "search" => {
                        event.insert("query", format!("product {}", g % 50));
                    }
                    "product_view" | "add_to_cart" => {
                        event.insert("product_id", (g % (50 * scale)) + 1);
                    }
                    _ => {}
                }
                event
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Insert the sample documents; refused when a collection already holds documents, so a
/// second seed never doubles them. Returns the count per collection.
/// Each read and each insert has the member's command deadline.
pub async fn seed(
    member: &Member,
    database: &str,
    scale: u32,
) -> Result<Vec<(&'static str, usize)>, SeedError> {
    let db = member.client().database(database);
    for name in COLLECTIONS {
        let any = member
            .within("find", db.collection::<Document>(name).find_one(doc! {}))
            .await?;
        if any.is_some() {
            return Err(SeedError::NotEmpty {
                collection: name.to_owned(),
            });
        }
    }
    let mut counts = Vec::new();
    for name in COLLECTIONS {
        let documents = documents(name, scale);
        member
            .within(
                "insert",
                db.collection::<Document>(name).insert_many(&documents),
            )
            .await?;
        counts.push((name, documents.len()));
    }
    Ok(counts)
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SeedError {
    #[error("collection {collection} already holds documents")]
    #[diagnostic(
        code(dbtopo::mongo::seed_not_empty),
        help("seed fills empty collections only, so it never doubles documents")
    )]
    NotEmpty { collection: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Mongo(#[from] MongoError),
}
