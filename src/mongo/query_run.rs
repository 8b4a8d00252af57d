//! Running named queries and the command line's writes through the driver, each call within
//! the member's command deadline (see [`super::client`]).

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document};
use serde::Serialize;

use super::client::{Member, MongoError};
use super::query::{NamedQuery, Operation, document};

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The documents a find or an aggregation returned, in order.
    Documents {
        documents: Vec<Document>,
    },
    Inserted {
        inserted: u64,
        ids: Vec<Bson>,
    },
    Updated {
        matched: u64,
        modified: u64,
    },
    Deleted {
        deleted: u64,
    },
}

/// Runs a named query on `database`.
pub async fn run_query(
    member: &Member,
    database: &str,
    query: &NamedQuery,
) -> Result<Outcome, MongoError> {
    let collection = member
        .client()
        .database(database)
        .collection::<Document>(&query.collection.value);
    match &query.operation {
        Operation::Find {
            filter,
            projection,
            sort,
            limit,
            skip,
        } => {
            let mut find = collection.find(document(filter.as_ref()));
            if let Some(projection) = projection {
                find = find.projection(projection.value.to_document());
            }
            if let Some(sort) = sort {
                find = find.sort(sort.value.to_document());
            }
            if let Some(limit) = limit {
                find = find.limit(*limit);
            }
            if let Some(skip) = skip {
                find = find.skip(*skip);
            }
            let documents = member
                .within("find", async { find.await?.try_collect().await })
                .await?;
            Ok(Outcome::Documents { documents })
        }
        Operation::Aggregate(stages) => {
            let pipeline: Vec<Document> = stages.iter().map(|s| s.value.to_document()).collect();
            let documents = member
                .within("aggregate", async {
                    collection.aggregate(pipeline).await?.try_collect().await
                })
                .await?;
            Ok(Outcome::Documents { documents })
        }
        Operation::Update {
            filter,
            update,
            many,
        } => {
            update_documents(
                member,
                database,
                &query.collection.value,
                filter.value.to_document(),
                update.value.to_document(),
                *many,
            )
            .await
        }
        Operation::Delete { filter, many } => {
            delete_documents(
                member,
                database,
                &query.collection.value,
                filter.value.to_document(),
                *many,
            )
            .await
        }
    }
}

/// `insertMany`: the documents in order, stopping at the first refused one.
pub async fn insert_documents(
    member: &Member,
    database: &str,
    collection: &str,
    documents: Vec<Document>,
) -> Result<Outcome, MongoError> {
    let collection = member
        .client()
        .database(database)
        .collection::<Document>(collection);
    let result = member
        .within("insert", collection.insert_many(documents))
        .await?;
    let mut ids: Vec<(usize, Bson)> = result.inserted_ids.into_iter().collect();
    ids.sort_by_key(|(position, _)| *position);
    Ok(Outcome::Inserted {
        inserted: ids.len() as u64,
        ids: ids.into_iter().map(|(_, id)| id).collect(),
    })
}

/// `updateOne`, or `updateMany` when `many`.
pub async fn update_documents(
    member: &Member,
    database: &str,
    collection: &str,
    filter: Document,
    update: Document,
    many: bool,
) -> Result<Outcome, MongoError> {
    let collection = member
        .client()
        .database(database)
        .collection::<Document>(collection);
    let result = if many {
        member
            .within("update", collection.update_many(filter, update))
            .await?
    } else {
        member
            .within("update", collection.update_one(filter, update))
            .await?
    };
    Ok(Outcome::Updated {
        matched: result.matched_count,
        modified: result.modified_count,
    })
}

/// `deleteOne`, or `deleteMany` when `many`.
pub async fn delete_documents(
    member: &Member,
    database: &str,
    collection: &str,
    filter: Document,
    many: bool,
) -> Result<Outcome, MongoError> {
    let collection = member
        .client()
        .database(database)
        .collection::<Document>(collection);
    let result = if many {
        member
            .within("delete", collection.delete_many(filter))
            .await?
    } else {
        member
            .within("delete", collection.delete_one(filter))
            .await?
    };
    Ok(Outcome::Deleted {
        deleted: result.deleted_count,
    })
}
